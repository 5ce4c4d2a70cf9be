"""Reading and editing TFLite flatbuffers: what a converted file holds, and the edits an export makes to it.

The schema and the read/write helpers are ai-edge-litert's where it is installed, else TensorFlow's
(`tflite_schema`, `flatbuffer_tools`). Reading: `inspect_flatbuffer` counts a file's ops and lists the weights
stored in TFLite's sparse format (`SparseTensor`s) with the ops that use them; `weight_layout` and `tensor_name`
describe one tensor of the object API (for `ltp_tfmot.export.kernels`). Editing, for `ltp_tfmot.export.tflite`:
`densify_sparse_dequantize_inputs` works around a converter defect (block-sparse float16 weights fed to DEQUANTIZE
without a DENSIFY), and `stamp_resolver` and `recorded_resolver` write and read the metadata entry naming the op
resolver a file was checked with. Nothing here runs a file.
"""

import collections
import dataclasses
import struct

import numpy as np

RESOLVER_METADATA = 'ltp_tfmot.op_resolver'
# Ops that only change the encoding of a weight between its storage and the op using it.
PASS_THROUGH_OPS = ('DENSIFY', 'DEQUANTIZE')


@dataclasses.dataclass(frozen=True)
class SparseTensor:
  """A weight tensor stored in TFLite's sparse format.

  Attributes:
    name: The TFLite tensor name.
    layer: The Keras layer whose weight it stores, where it could be matched
      (by name, else by size and number of stored values), else None.
    shape: The dense shape in TFLite's layout (e.g. [out, in] for a Dense kernel).
    dtype: The stored element type ('float32', 'float16', 'int8', ...).
    bytes: Bytes of stored values (the index arrays come on top).
    ops: The ops that use the weight, e.g. ('FULLY_CONNECTED',).
    densified: True if a DENSIFY op expands the weight before those ops run
      (dense kernels, no speed-up); False if they consume the sparse tensor.
  """
  name: str
  layer: str | None
  shape: tuple[int, ...]
  dtype: str
  bytes: int
  ops: tuple[str, ...]
  densified: bool


def tflite_schema():
  """The TFLite flatbuffer schema module (ai-edge-litert's, else TensorFlow's)."""
  try:
    from ai_edge_litert import schema_py_generated  # pylint: disable=g-import-not-at-top
  except ImportError:
    from tensorflow.lite.python import schema_py_generated  # pylint: disable=g-import-not-at-top
  return schema_py_generated


def flatbuffer_tools():
  """The TFLite flatbuffer read/write helpers (ai-edge-litert's, else TensorFlow's)."""
  try:
    from ai_edge_litert.tools import flatbuffer_utils  # pylint: disable=g-import-not-at-top
  except ImportError:
    from tensorflow.lite.tools import flatbuffer_utils  # pylint: disable=g-import-not-at-top
  return flatbuffer_utils


def enum_names(enum):
  """{code: name} of a schema enum class, e.g. `tflite_schema().BuiltinOperator`.

  Args:
    enum: A class of the generated schema whose public attributes are the codes.

  Returns:
    A dict from each code to its attribute name.
  """
  return {code: name for name, code in vars(enum).items() if not name.startswith('_')}


def tensor_name(tensor):
  """The name of a flatbuffer `TensorT`, as str."""
  value = tensor.name
  return value.decode() if isinstance(value, bytes) else (value or '')


def weight_layout(tensor):
  """'dense', 'random' or 'RxC' (the block of a 2-D weight in TFLite's layout) of a flatbuffer `TensorT`."""
  sparsity = tensor.sparsity
  if sparsity is None:
    return 'dense'
  rank = len(tensor.shape)
  metadata = sparsity.dimMetadata or []
  if len(metadata) <= rank:
    return 'random'
  block = [1] * rank
  for dim, meta in zip(sparsity.blockMap if sparsity.blockMap is not None else [], metadata[rank:], strict=False):
    block[int(dim)] = int(meta.denseSize)
  return 'x'.join(str(b) for b in block)


def inspect_flatbuffer(flatbuffer):
  """Op counts and sparse weight tensors of a TFLite flatbuffer.

  Args:
    flatbuffer: The model bytes.

  Returns:
    ({op name: count}, [SparseTensor with layer=None]).
  """
  schema = tflite_schema()
  model = schema.Model.GetRootAs(flatbuffer, 0)
  op_names = enum_names(schema.BuiltinOperator)
  type_names = {code: name.lower() for code, name in enum_names(schema.TensorType).items()}
  codes = []
  for i in range(model.OperatorCodesLength()):
    code = model.OperatorCodes(i)
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    custom = code.CustomCode()
    codes.append(custom.decode() if builtin == schema.BuiltinOperator.CUSTOM and custom else op_names[builtin])
  op_counts = collections.Counter()
  sparse_tensors = []
  for s in range(model.SubgraphsLength()):
    graph = model.Subgraphs(s)
    ops, consumers = [], collections.defaultdict(list)
    for o in range(graph.OperatorsLength()):
      op = graph.Operators(o)
      ops.append((codes[op.OpcodeIndex()], list(op.OutputsAsNumpy()) if op.OutputsLength() else []))
      op_counts[ops[-1][0]] += 1
      for t in (op.InputsAsNumpy() if op.InputsLength() else []):
        if t >= 0:
          consumers[int(t)].append(o)
    for t in range(graph.TensorsLength()):
      tensor = graph.Tensors(t)
      if tensor.Sparsity() is None:
        continue
      dtype = type_names.get(tensor.Type(), str(tensor.Type()))
      data_bytes = model.Buffers(tensor.Buffer()).DataLength() if tensor.Buffer() < model.BuffersLength() else 0
      users, densified = _users(t, ops, consumers)
      sparse_tensors.append(SparseTensor(
          name=tensor.Name().decode(), layer=None, shape=tuple(int(d) for d in tensor.ShapeAsNumpy()),
          dtype=dtype, bytes=int(data_bytes), ops=tuple(users), densified=densified))
  return dict(op_counts), sparse_tensors


def _users(tensor, ops, consumers):
  """The compute ops using a tensor, looking through DENSIFY/DEQUANTIZE, and whether a DENSIFY was passed."""
  users, densified, frontier, seen = [], False, [tensor], set()
  while frontier:
    t = frontier.pop()
    for o in consumers.get(t, []):
      if o in seen:
        continue
      seen.add(o)
      name, outputs = ops[o]
      if name in PASS_THROUGH_OPS:
        densified |= name == 'DENSIFY'
        frontier.extend(int(x) for x in outputs)
      else:
        users.append(name)
  return users, densified


def densify_sparse_dequantize_inputs(flatbuffer):
  """A DENSIFY op inserted between each sparse weight and a DEQUANTIZE reading it.

  The converter leaves block-sparse float16 weights (blocks a kernel could
  consume) feeding DEQUANTIZE directly; DEQUANTIZE has no sparse input and
  reads the compressed values as a dense array. Unstructured float16 weights
  get DENSIFY -> DEQUANTIZE from the converter; this gives blocks the same.

  Args:
    flatbuffer: The model bytes.

  Returns:
    (flatbuffer, count): the edited bytes (the given ones if nothing was
    inserted) and the number of DENSIFY ops inserted.
  """
  schema, utils = tflite_schema(), flatbuffer_tools()
  model = utils.read_model_from_bytearray(bytearray(flatbuffer))
  codes = [utils.get_builtin_code_from_operator_code(code) for code in model.operatorCodes]
  densify_code, count = None, 0
  for graph in model.subgraphs:
    operators = []
    for op in graph.operators:
      source = graph.tensors[op.inputs[0]] if op.inputs else None
      if codes[op.opcodeIndex] == schema.BuiltinOperator.DEQUANTIZE and source is not None and source.sparsity:
        if densify_code is None:
          code = schema.OperatorCodeT()
          code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.DENSIFY
          code.version = 1
          model.operatorCodes.append(code)
          densify_code = len(model.operatorCodes) - 1
        dense = schema.TensorT()
        dense.shape, dense.type, dense.buffer = list(source.shape), source.type, 0
        dense.name = tensor_name(source) + '/densified'
        graph.tensors.append(dense)
        densify = schema.OperatorT()
        densify.opcodeIndex, densify.inputs, densify.outputs = densify_code, [op.inputs[0]], [len(graph.tensors) - 1]
        operators.append(densify)
        op.inputs[0] = len(graph.tensors) - 1
        count += 1
      operators.append(op)
    graph.operators = operators
  if not count:
    return flatbuffer, 0
  return bytes(utils.convert_object_to_bytearray(model)), count


def partial_blocks_hint(flatbuffer):
  """Why a sparse conversion may be wrong: FULLY_CONNECTED weights whose blocks do not tile their input dimension.

  Args:
    flatbuffer: The model bytes.

  Returns:
    A sentence (starting with '. ') naming those weights and what to change, or '' if there are none.
  """
  model = flatbuffer_tools().read_model_from_bytearray(bytearray(flatbuffer))
  partial = []
  for graph in model.subgraphs:
    for tensor in graph.tensors:
      layout = weight_layout(tensor)
      if 'x' in layout and len(tensor.shape) == 2 and tensor.shape[1] % int(layout.split('x')[1]):
        partial.append(f'{tensor_name(tensor)} {list(tensor.shape)} in {layout} blocks')
  if not partial:
    return ''
  # Seen here: such files compute wrong outputs under every resolver, with or without a DENSIFY in front.
  return (f'. The converter stored {partial} in blocks that do not tile the input dimension (the second), which '
          'computes wrong outputs: give those layers a multiple of the block width (4 float, 16 int8) of inputs')


def stamp_resolver(flatbuffer, resolver):
  """The flatbuffer with a metadata entry naming the op resolver it was checked with.

  Args:
    flatbuffer: The model bytes.
    resolver: The op resolver's name, e.g. 'AUTO'.

  Returns:
    The model bytes with one `RESOLVER_METADATA` entry (an earlier one is replaced).
  """
  schema, utils = tflite_schema(), flatbuffer_tools()
  model = utils.read_model_from_bytearray(bytearray(flatbuffer))
  model.metadata = [m for m in (model.metadata or []) if _metadata_name(m) != RESOLVER_METADATA]
  buffer = schema.BufferT()
  buffer.data = np.frombuffer(resolver.encode(), np.uint8)
  model.buffers.append(buffer)
  entry = schema.MetadataT()
  entry.name, entry.buffer = RESOLVER_METADATA, len(model.buffers) - 1
  model.metadata.append(entry)
  return bytes(utils.convert_object_to_bytearray(model))


def _metadata_name(entry):
  return entry.name.decode() if isinstance(entry.name, bytes) else entry.name


def recorded_resolver(content):
  """The op resolver `stamp_resolver` recorded in a flatbuffer.

  Args:
    content: The model bytes.

  Returns:
    The recorded name, or None for bytes without a readable record.
  """
  try:
    model = tflite_schema().Model.GetRootAs(content, 0)
    for i in range(model.MetadataLength()):
      entry = model.Metadata(i)
      if entry.Name() and entry.Name().decode() == RESOLVER_METADATA:
        return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode()
  except (AttributeError, IndexError, TypeError, UnicodeDecodeError, ValueError, struct.error):
    return None  # not a flatbuffer, or one without a readable record
  return None
