"""Tests that the package's entry points import only what they need."""

import importlib
import os
import subprocess
import sys

import tensorflow as tf

_PROBE = """
import sys
import {module}
heavy = sorted(m for m in ('tensorflow', 'tf_keras', 'tensorflow_model_optimization') if m in sys.modules)
print('heavy modules:', ','.join(heavy))
"""


def _heavy_modules_after_import(module):
  # The probe sees the package where this test does (Bazel's runfiles or the source tree).
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
  result = subprocess.run([sys.executable, '-c', _PROBE.format(module=module)], capture_output=True, text=True,
                          check=True, timeout=120, env=env)
  # The probe's line comes last, after what the module printed.
  return result.stdout.strip().splitlines()[-1].removeprefix('heavy modules:').strip()


class ImportsTest(tf.test.TestCase):

  def test_package_import_loads_no_tensorflow(self):
    self.assertEqual(_heavy_modules_after_import('ltp_tfmot'), '')

  def test_command_line_import_help_and_flag_errors_load_no_tensorflow(self):
    self.assertEqual(_heavy_modules_after_import('ltp_tfmot.cli'), '')
    for argv in (['--help'], ['run', '--no_such_flag=1'], ['run', '--model=vgg99'], ['run', '--rate=1.5'],
                 ['run', '--criterion=largest'], ['run', '--model=resnet20', '--momentum=2']):
      probe = f'ltp_tfmot.cli; ltp_tfmot.cli.main({["ltp-tfmot"] + argv!r})'
      self.assertEqual(_heavy_modules_after_import(probe), '', str(argv))

  def test_the_report_command_loads_no_tensorflow(self):
    # `ltp-tfmot report` reads the run directories and draws with matplotlib: no TensorFlow start.
    self.assertEqual(_heavy_modules_after_import('ltp_tfmot.experiment.report'), '')
    probe = "ltp_tfmot.cli; ltp_tfmot.cli.main(['ltp-tfmot', 'report', '/nonexistent/runs'])"
    self.assertEqual(_heavy_modules_after_import(probe), '')

  def test_builtin_criterion_names_are_those_the_registry_loads_with(self):
    probe = ('ltp_tfmot.core.criteria; from ltp_tfmot import validation; '
             'assert ltp_tfmot.core.criteria.criterion_names() == sorted(validation.BUILTIN_CRITERIA), '
             '(ltp_tfmot.core.criteria.criterion_names(), validation.BUILTIN_CRITERIA)')
    # The probe exits non-zero (and the call raises) if the two lists differ.
    self.assertIn('tensorflow', _heavy_modules_after_import(probe).split(','))

  def test_module_paths_from_before_the_packages_name_the_same_modules(self):
    moved = {'masks': 'core.masks', 'callbacks': 'keras2.callbacks', 'compat': 'keras2.compat',
             'criteria': 'core.criteria', 'model_layers': 'keras2.model_layers', 'prune': 'keras2.prune',
             'rounds': 'keras2.rounds', 'schedule': 'core.schedule', 'tickets': 'keras2.tickets',
             'unit_groups': 'keras2.unit_groups', 'wrapper': 'keras2.wrapper', 'early_bird': 'methods.early_bird',
             'init_pruning': 'methods.init_pruning', 'structured': 'methods.structured',
             'supermask': 'methods.supermask', 'kernels': 'export.kernels', 'latency': 'export.latency',
             'quantize': 'export.quantize', 'models': 'zoo'}
    import ltp_tfmot  # pylint: disable=g-import-not-at-top
    for old, new in moved.items():
      module = importlib.import_module(f'ltp_tfmot.{old}')
      self.assertIs(module, importlib.import_module(f'ltp_tfmot.{new}'), old)
      self.assertIs(getattr(ltp_tfmot, old), module, old)
      self.assertEqual(module.__spec__.name, f'ltp_tfmot.{new}', old)  # its own spec: importlib.reload works
    from ltp_tfmot.experiment import storage  # pylint: disable=g-import-not-at-top
    self.assertTrue(callable(storage.load_masks))
    with self.assertRaises(ModuleNotFoundError):
      importlib.import_module('ltp_tfmot.no_such_module')

  def test_the_experiments_old_model_and_preset_modules_name_the_zoos_objects(self):
    import ltp_tfmot  # pylint: disable=g-import-not-at-top
    from ltp_tfmot.experiment import models as experiment_models  # pylint: disable=g-import-not-at-top
    from ltp_tfmot.experiment import presets as experiment_presets  # pylint: disable=g-import-not-at-top
    from ltp_tfmot.zoo import registry  # pylint: disable=g-import-not-at-top
    self.assertIs(experiment_models.MODELS, registry.MODELS)
    self.assertIs(experiment_models.get_model_spec, registry.get_model_spec)
    self.assertIs(experiment_presets.get_preset, registry.get_preset)
    self.assertIs(ltp_tfmot.experiment.Preset, experiment_presets.Preset)
    self.assertIs(ltp_tfmot.experiment.MODELS, registry.MODELS)

  def test_public_names_and_submodules_resolve_on_first_use(self):
    import ltp_tfmot  # pylint: disable=g-import-not-at-top
    from ltp_tfmot.keras2 import wrapper  # pylint: disable=g-import-not-at-top
    self.assertIs(ltp_tfmot.PruneLotteryTicket, wrapper.PruneLotteryTicket)
    self.assertTrue(callable(ltp_tfmot.datasets.load_mnist))
    self.assertTrue(callable(ltp_tfmot.models.lenet_300_100))
    self.assertTrue(callable(ltp_tfmot.prune.prunable_layer_names))  # a path from before the packages
    self.assertIn('prune_lottery_ticket', dir(ltp_tfmot))
    for name in ltp_tfmot.__all__:
      self.assertIsNotNone(getattr(ltp_tfmot, name))
    for error in (ltp_tfmot.StorageError, ltp_tfmot.CorruptFileError, ltp_tfmot.TicketFileError,
                  ltp_tfmot.ExportError, ltp_tfmot.WorkerLostError):
      self.assertTrue(issubclass(error, ltp_tfmot.LtpError), error)
    from ltp_tfmot.experiment import storage  # pylint: disable=g-import-not-at-top
    self.assertIs(storage.StorageError, ltp_tfmot.StorageError)
    self.assertIs(ltp_tfmot.experiment.WorkerLostError, ltp_tfmot.WorkerLostError)
    with self.assertRaisesRegex(AttributeError, "no attribute 'prune_low_magnitude'"):
      _ = ltp_tfmot.prune_low_magnitude


if __name__ == '__main__':
  tf.test.main()
