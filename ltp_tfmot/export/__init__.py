"""Export of pruned models: TFLite files that keep the zeros sparse, checked against Keras before they are written.

Its modules: `tflite` (convert, check under each op resolver, write, load),
`quantize` (quantization-aware tickets), `kernels` (which kernel runs each op
under each resolver) and `latency` (interleaved timing). A new target is a new
module here.

Names are imported on first use, as in `ltp_tfmot` itself.
"""

import importlib

# Public name -> module that defines it.
_EXPORTS = {
    'export_tflite': 'tflite',
    'ExportReport': 'tflite',
    'load_tflite': 'tflite',
    'quantize_ticket': 'quantize',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
  if name in _EXPORTS:
    module = _EXPORTS[name]
  elif not name.startswith('_') and hasattr(importlib.import_module(f'{__name__}.tflite'), name):
    # `ltp_tfmot.export` was one module before it was a package: its other public names still resolve.
    module = 'tflite'
  else:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  value = getattr(importlib.import_module(f'{__name__}.{module}'), name)
  globals()[name] = value
  return value


def __dir__():
  return sorted(set(globals()) | set(__all__))
