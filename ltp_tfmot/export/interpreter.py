"""The ai-edge-litert interpreter: a TFLite file loaded under one op resolver and run on sample inputs.

An exported file is checked, described and timed under two op resolvers: 'AUTO' (TFLite's default, with the
XNNPACK delegate) and 'BUILTIN_WITHOUT_DEFAULT_DELEGATES' (TFLite's built-in kernels only). This module names them
and makes and runs the interpreters for the export check (`ltp_tfmot.export.tflite`), the kernel report
(`kernels`) and the timing (`latency`). ai-edge-litert is imported on first use, so that its absence is said with
how to install it.
"""

import os

import numpy as np

from ltp_tfmot import errors

DEFAULT_RESOLVER = 'AUTO'
NO_DEFAULT_DELEGATES = 'BUILTIN_WITHOUT_DEFAULT_DELEGATES'
RESOLVERS = (DEFAULT_RESOLVER, NO_DEFAULT_DELEGATES)


def litert():
  """The `ai_edge_litert.interpreter` module.

  Returns:
    The module.

  Raises:
    MissingDependencyError: if ai-edge-litert is not installed.
  """
  try:
    from ai_edge_litert import interpreter  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise errors.MissingDependencyError('export_tflite checks every file it writes with the ai-edge-litert '
                                        'interpreter, which is not installed (ltp_tfmot depends on it where a wheel '
                                        'exists: Linux and macOS): pip install ai-edge-litert') from e
  return interpreter


def allocated_interpreter(path_or_content, resolver, num_threads=None):
  """An interpreter for a TFLite file under one op resolver, with its tensors allocated.

  Args:
    path_or_content: A local `.tflite` path or the flatbuffer bytes.
    resolver: 'AUTO' or 'BUILTIN_WITHOUT_DEFAULT_DELEGATES'.
    num_threads: Threads of the interpreter, or None for its default.

  Returns:
    An `ai_edge_litert.interpreter.Interpreter`.

  Raises:
    MissingDependencyError: if ai-edge-litert is not installed.
    RuntimeError, ValueError: if the file does not load under the resolver.
  """
  module = litert()
  kind = getattr(module.OpResolverType, resolver)
  if isinstance(path_or_content, (bytes, bytearray)):
    interpreter = module.Interpreter(model_content=bytes(path_or_content), experimental_op_resolver_type=kind,
                                     num_threads=num_threads)
  else:
    interpreter = module.Interpreter(model_path=os.fspath(path_or_content), experimental_op_resolver_type=kind,
                                     num_threads=num_threads)
  interpreter.allocate_tensors()
  return interpreter


def run(interpreter, samples):
  """Runs an interpreter on samples through its signature, or once on zeros.

  Args:
    interpreter: An allocated interpreter.
    samples: {input name: array of samples}, or None to run once on zeros. Names
      the file does not have are matched to its inputs in order.

  Returns:
    {output name: array} (by output tensor index, as str, for a run on zeros).

  Raises:
    ValueError: if the file has another number of inputs than `samples`.
    RuntimeError: if the interpreter fails to run.
  """
  if samples is None:
    for detail in interpreter.get_input_details():
      interpreter.set_tensor(detail['index'], np.zeros(detail['shape'], detail['dtype']))
    interpreter.invoke()
    return {str(d['index']): interpreter.get_tensor(d['index']) for d in interpreter.get_output_details()}
  runner = interpreter.get_signature_runner()
  input_details = runner.get_input_details()
  names = list(input_details)
  if set(names) != set(samples):
    if len(names) != len(samples):
      raise ValueError(f'the TFLite model has inputs {names}, the Keras model {list(samples)}')
    samples = dict(zip(names, samples.values(), strict=True))
  return runner(**{name: np.asarray(value, input_details[name]['dtype']) for name, value in samples.items()})
