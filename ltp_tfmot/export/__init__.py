"""Export of pruned models: TFLite files that keep the zeros sparse, checked against Keras before they are written.

Its modules: `tflite` (convert, check under each op resolver, write, load), `prepare` and `prepare_keras3` (the
Keras 2 and Keras 3 sides every target shares: the model checked, re-masked and stripped, its zeros by layer),
`reference` (what both sides share: sample inputs and outputs, the layer of a converted weight), `interpreter` (the op
resolvers, running a file), `flatbuffer` (reading and editing TFLite files), `kernels` (which kernel runs each op
under each resolver), `latency` (interleaved timing), `report` (`ExportReport`) and `quantize`
(quantization-aware tickets). A new target is a new module here, next to `tflite`, using `prepare` (or
`prepare_keras3`), `reference` and `report`.

Names are imported on first use, as in `ltp_tfmot` itself.
"""

import importlib

# Public name -> module that defines it.
_EXPORTS = {
    'export_tflite': 'tflite',
    'ExportReport': 'report',
    'load_tflite': 'tflite',
    'quantize_ticket': 'quantize',
}

# `ltp_tfmot.export` was one module before it was a package: its other public names still resolve, from the
# module that holds each now.
_FORMER_MODULE_NAMES = {
    'CALIBRATION_LIMIT': 'tflite',
    'ExportError': 'tflite',
    'QUANTIZATIONS': 'tflite',
    'TOLERANCES': 'tflite',
    'DEFAULT_RESOLVER': 'interpreter',
    'NO_DEFAULT_DELEGATES': 'interpreter',
    'RESOLVERS': 'interpreter',
    'RESOLVER_METADATA': 'flatbuffer',
    'SparseTensor': 'flatbuffer',
    'inspect_flatbuffer': 'flatbuffer',
    'LATENCY_BLOCK_SECONDS': 'latency',
    'LATENCY_RUNS': 'latency',
    'Latency': 'latency',
    'SAMPLE_COUNT': 'reference',
    'is_quantization_aware': 'prepare',
    'ResolverCheck': 'report',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
  module = _EXPORTS.get(name) or _FORMER_MODULE_NAMES.get(name)
  if module is None:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  value = getattr(importlib.import_module(f'{__name__}.{module}'), name)
  globals()[name] = value
  return value


def __dir__():
  return sorted(set(globals()) | set(__all__))
