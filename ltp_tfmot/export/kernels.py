"""Which kernel each weighted op of a TFLite file runs with, under each op resolver.

The rules are data (`BUILTIN_RULES`, `XNNPACK_RULES`, `XNNPACK_SPARSE_INFERENCE`), each with the reason it
holds, read from TFLite's and XNNPACK's sources and checked here against the interpreter:
- TFLite's built-in FULLY_CONNECTED (`tensorflow/lite/kernels/fully_connected.cc`) has sparse kernels for
  float32 weights stored random-sparse or in 1x4 blocks, and for int8 weights (full-integer and hybrid) in
  1x16 blocks; it refuses other sparse layouts. No built-in convolution reads sparse weights.
- The converter (`EXPERIMENTAL_SPARSITY`) stores float FULLY_CONNECTED weights as 1x4 blocks and int8 ones as
  1x16 blocks where the zeros allow it, and otherwise stores them random-sparse with a DENSIFY op in front,
  which expands them (once: they are constant) for a dense kernel.
- The XNNPACK delegate (the default resolver) takes DENSIFY ops of float weights, and of int8 convolution
  weights, and the ops behind them (weights expanded when the delegate is built; dense kernels); it leaves
  float32 and int8 ops whose weights are stored sparse to the built-in kernels; it claims int8 and hybrid
  FULLY_CONNECTED ops behind an int8 DENSIFY and fails to prepare them (the file does not load), and takes
  hybrid ones with sparse int8 weights and computes wrong outputs.
- XNNPACK's own sparse inference (Fast Sparse ConvNets) runs 1x1 CONV_2D ops with at least 2/3 zero weights
  inside a CNN subgraph that starts with a 3x3 stride-2 CONV_2D on 3 channels and ends in a spatial MEAN (or
  DEPTH_TO_SPACE), on XNNPACK builds whose sparse (CHW) kernels are enabled (ARM; not x86 with AVX), with the
  delegate's sparse-inference option. Nothing the interpreter reports shows it, so it is only ever "expected".

`op_kernels` applies the rules to a flatbuffer and compares each with where the interpreter put the op: a
placement the interpreter confirms is "runs", a rule it cannot confirm is "expected", a file that does not load
under a resolver is "fails". Where the interpreter put each op is read from its node listing (`delegated_nodes`,
and `op_placement` for the counts of each op type).
"""

import collections
import dataclasses
import platform

from ltp_tfmot.export import flatbuffer as flatbuffer_lib
from ltp_tfmot.export import interpreter as interpreter_lib

RUNS, EXPECTED, FAILS = 'runs', 'expected', 'fails'
WEIGHTED_OPS = ('FULLY_CONNECTED', 'CONV_2D', 'DEPTHWISE_CONV_2D')


@dataclasses.dataclass(frozen=True)
class KernelRule:
  """One kernel-selection rule: the ops it matches and the kernel they run with.

  Attributes:
    op: The op name it applies to, or None for any weighted op.
    compute: 'float32', 'int8' (int8 inputs and weights) or 'hybrid' (float inputs, int8 weights); None: any.
    layout: The weight layout as stored: 'dense', 'random' (sparse, no blocks) or a block like '1x4'; None: any
      sparse layout.
    densified: Whether a DENSIFY op expands the weight first; None: either.
    kernel: What runs it, in words.
    delegated: Whether the XNNPACK delegate takes the op (False for built-in kernels).
    sparse: Whether the kernel computes with the sparse weights.
    loads: False if the file does not load or computes wrong outputs when this rule applies.
    reason: Why, with the source it comes from.
  """
  op: str | None
  compute: str | None
  layout: str | None
  densified: bool | None
  kernel: str
  delegated: bool
  sparse: bool
  loads: bool
  reason: str

  def matches(self, op):
    sparse_layout = self.layout is None and op.layout != 'dense'
    return ((self.op is None or self.op == op.op) and (self.compute is None or self.compute == op.compute)
            and (sparse_layout or self.layout == op.layout)
            and (self.densified is None or self.densified == op.densified))


_FC = 'fully_connected.cc'
BUILTIN_RULES = (
    KernelRule(None, None, None, True, 'built-in dense kernel after DENSIFY', False, False, True,
               'the converter stores the weight sparse but adds a DENSIFY op, because the kernel cannot read this '
               'layout; the built-in DENSIFY expands the constant weight once, on the first invoke'),
    KernelRule('FULLY_CONNECTED', 'float32', '1x4', False, 'built-in sparse FULLY_CONNECTED (1x4 blocks)', False,
               True, True, f'{_FC}: float32 weights in 1x4 blocks run FullyConnectedSparseWeight1x4'),
    KernelRule('FULLY_CONNECTED', 'float32', 'random', False, 'built-in sparse FULLY_CONNECTED (random sparse)',
               False, True, True, f'{_FC}: float32 weights stored random-sparse run FullyConnectedSparseWeight'),
    KernelRule('FULLY_CONNECTED', 'int8', '1x16', False, 'built-in sparse int8 FULLY_CONNECTED (1x16 blocks)',
               False, True, True, f'{_FC}: int8 weights in 1x16 blocks run FullyConnectedSparseWeight1x16'),
    KernelRule('FULLY_CONNECTED', 'hybrid', '1x16', False,
               'built-in sparse hybrid FULLY_CONNECTED (1x16 blocks)', False, True, True,
               f'{_FC}: hybrid (float input, int8 weights) FULLY_CONNECTED reads int8 weights in 1x16 blocks'),
    KernelRule(None, None, None, False, 'none: the built-in kernel refuses this sparse layout', False, False, False,
               f'{_FC} runs only random-sparse or 1x4 float32 and 1x16 int8 weights ("Unsupported sparse '
               'fully-connected weight format"); no built-in convolution reads sparse weights'),
    KernelRule(None, None, 'dense', None, 'built-in dense kernel', False, False, True, 'dense weights'),
)
XNNPACK_RULES = (
    KernelRule(None, 'float32', None, True, 'XNNPACK dense kernel (weights expanded when the delegate is built)',
               True, False, True, 'the XNNPACK delegate takes DENSIFY ops of float weights and expands the '
               'constant weights into its packed dense format when it is built'),
    KernelRule('FULLY_CONNECTED', 'int8', None, True, 'none: XNNPACK claims it and fails to prepare', True, False,
               False, 'the XNNPACK delegate claims int8 FULLY_CONNECTED ops behind an int8 DENSIFY and then fails to '
               'prepare the node ("failed to delegate FULLY_CONNECTED node"): the file does not load with the '
               'default resolver'),
    KernelRule(None, 'int8', None, True, 'XNNPACK dense kernel (weights expanded when the delegate is built)', True,
               False, True, 'the XNNPACK delegate takes int8 convolutions behind an int8 DENSIFY and expands the '
               'constant weights when it is built (seen for CONV_2D)'),
    KernelRule(None, 'hybrid', None, True, 'none: XNNPACK claims it and fails to prepare', True, False, False,
               'the XNNPACK delegate claims hybrid ops behind an int8 DENSIFY and then fails to prepare the node'),
    KernelRule(None, 'hybrid', None, False, 'XNNPACK, reading the compressed weights as dense (wrong outputs)', True,
               False, False, 'the XNNPACK delegate takes hybrid FULLY_CONNECTED ops with sparse int8 weights without '
               'expanding them: their outputs are wrong'),
    KernelRule(None, None, None, False, 'left to the built-in kernels', False, True, True,
               'the XNNPACK delegate does not take ops whose weights are stored sparse'),
    KernelRule(None, None, 'dense', None, 'XNNPACK dense kernel', True, False, True,
               'dense weights: the XNNPACK delegate takes the ops it supports'),
)
# Fast Sparse ConvNets in XNNPACK (tensorflow/lite/delegates/xnnpack/README.md, "Sparse Inference").
XNNPACK_SPARSE_INFERENCE = {
    'ops': ('CONV_2D', 'DEPTHWISE_CONV_2D', 'MEAN', 'ADD', 'MUL', 'RESIZE_BILINEAR', 'ABS', 'CEIL', 'ELU', 'FLOOR',
            'HARD_SWISH', 'LEAKY_RELU', 'LOGISTIC', 'NEG', 'RELU', 'RELU6', 'RELU_N1_TO_1', 'ROUND', 'SQUARE'),
    'zero_fraction': 2 / 3,
    'start': 'a 3x3 stride-2 CONV_2D with 3 input channels',
    'end': ('MEAN', 'DEPTH_TO_SPACE'),
    'where': 'XNNPACK builds with its sparse (CHW) kernels enabled (ARM; not x86 with AVX) and the delegate created '
             'with its sparse-inference option',
}


@dataclasses.dataclass(frozen=True)
class OpKernel:
  """The kernel one weighted op of an exported file runs with under one op resolver.

  Attributes:
    index: The op's index in the file's main graph.
    op: The op name, e.g. 'FULLY_CONNECTED'.
    layer: The Keras layer of its weight, where it could be matched, else None.
    compute: 'float32', 'int8' or 'hybrid' (float inputs, int8 weights).
    layout: How the weight is stored: 'dense', 'random' (sparse) or a block like '1x4' (TFLite's [out, in]).
    densified: Whether a DENSIFY op expands the weight before the op.
    resolver: 'AUTO' (XNNPACK delegate, then built-in kernels) or 'BUILTIN_WITHOUT_DEFAULT_DELEGATES'.
    kernel: What runs the op, in words.
    sparse: Whether that kernel computes with the sparse weights (skips the zeros).
    status: 'runs' (the interpreter placed the op as the rule says and the file passed its check under this
      resolver), 'expected' (a rule the interpreter cannot confirm) or 'fails' (the file does not load or
      gives wrong outputs under this resolver).
    reason: The rule's reason, or what the interpreter did instead.
    xnnpack_sparse: Whether XNNPACK's own sparse inference would take the op, and why not ('AUTO' rows; '' else).
  """
  index: int
  op: str
  layer: str | None
  compute: str
  layout: str
  densified: bool
  resolver: str
  kernel: str
  sparse: bool
  status: str
  reason: str
  xnnpack_sparse: str = ''


@dataclasses.dataclass(frozen=True)
class _WeightedOp:
  index: int
  op: str
  weight: str
  compute: str
  layout: str
  densified: bool
  kernel_size: tuple[int, ...]
  strides: tuple[int, ...]
  input_channels: int | None
  zeros: float | None  # fraction of zero weights, where the stored values tell


def delegated_nodes(interpreter):
  """Indices of the ops a delegate took, from the interpreter's node listing; None if it lists none.

  After delegation the interpreter lists one 'DELEGATE' node per partition, whose inputs and outputs are the
  partition's boundary tensors: the ops it took are those reached walking back from its outputs to its inputs.
  (ai-edge-litert exposes no execution plan; `_get_ops_details` is its node listing.)
  """
  try:
    nodes = interpreter._get_ops_details()  # pylint: disable=protected-access
  except (AttributeError, RuntimeError, ValueError):
    return None
  producers = {int(t): node['index'] for node in nodes if node['op_name'] != 'DELEGATE' for t in node['outputs']}
  delegated = set()
  for node in nodes:
    if node['op_name'] != 'DELEGATE':
      continue
    boundary = {int(t) for t in node['inputs']}
    frontier = [int(t) for t in node['outputs']]
    while frontier:
      producer = producers.get(frontier.pop())
      if producer is None or producer in delegated:
        continue
      delegated.add(producer)
      frontier.extend(int(t) for t in nodes[producer]['inputs'] if t >= 0 and int(t) not in boundary)
  return delegated


def op_placement(interpreter, delegated=None):
  """How many ops of each type a delegate took, and how many it left to the built-in kernels.

  Args:
    interpreter: An allocated interpreter.
    delegated: The op indices a delegate took (`delegated_nodes`), found if not given.

  Returns:
    ({op: count} taken by a delegate, {op: count} left to built-in kernels), or (None, None) if the interpreter
    does not list its nodes.
  """
  if delegated is None:
    delegated = delegated_nodes(interpreter)
  if delegated is None:
    return None, None
  ops = [node for node in interpreter._get_ops_details() if node['op_name'] != 'DELEGATE']  # pylint: disable=protected-access
  taken = collections.Counter(node['op_name'] for node in ops if node['index'] in delegated)
  left = collections.Counter(node['op_name'] for node in ops if node['index'] not in delegated)
  return dict(taken), dict(left)


def _weighted_ops(model):
  """The `_WeightedOp`s of the main graph, with their weights traced back through DENSIFY and DEQUANTIZE."""
  schema = flatbuffer_lib.tflite_schema()
  op_names = flatbuffer_lib.enum_names(schema.BuiltinOperator)
  type_names = {k: v.lower() for k, v in flatbuffer_lib.enum_names(schema.TensorType).items()}
  graph = model.subgraphs[0]
  utils = flatbuffer_lib.flatbuffer_tools()
  codes = [utils.get_builtin_code_from_operator_code(code) for code in model.operatorCodes]
  producer = {int(t): op for op in graph.operators for t in (op.outputs if op.outputs is not None else [])}
  found = []
  for index, op in enumerate(graph.operators):
    name = op_names.get(codes[op.opcodeIndex], str(codes[op.opcodeIndex]))
    if name not in WEIGHTED_OPS or op.inputs is None or len(op.inputs) < 2 or op.inputs[1] < 0:
      continue
    weight, passed = int(op.inputs[1]), []
    pass_through = flatbuffer_lib.PASS_THROUGH_OPS
    while weight in producer and op_names.get(codes[producer[weight].opcodeIndex]) in pass_through:
      passed.append(op_names.get(codes[producer[weight].opcodeIndex]))
      weight = int(producer[weight].inputs[0])
    stored, data_input = graph.tensors[weight], graph.tensors[int(op.inputs[0])]
    weight_type, input_type = type_names.get(stored.type), type_names.get(data_input.type)
    if input_type in ('int8', 'uint8', 'int16'):
      compute = 'int8'
    elif weight_type == 'int8' and 'DEQUANTIZE' not in passed:
      compute = 'hybrid'
    else:
      compute = 'float32'
    densified = 'DENSIFY' in passed
    shape = [int(d) for d in stored.shape]
    options = op.builtinOptions
    strides = tuple(int(getattr(options, key, 1)) for key in ('strideH', 'strideW')) if name != 'FULLY_CONNECTED' \
        else ()
    kernel_size = tuple(shape[1:3]) if name != 'FULLY_CONNECTED' and len(shape) == 4 else ()
    input_channels = int(data_input.shape[-1]) if data_input.shape is not None and len(data_input.shape) else None
    found.append(_WeightedOp(index, name, flatbuffer_lib.tensor_name(stored), compute,
                             flatbuffer_lib.weight_layout(stored), densified, kernel_size, strides, input_channels,
                             _zero_fraction(model, stored, shape, type_names)))
  return found, [op_names.get(codes[op.opcodeIndex]) for op in graph.operators]


def _zero_fraction(model, tensor, shape, type_names):
  """Fraction of zero weights of a tensor stored random-sparse (its stored values are the non-zeros)."""
  if tensor.sparsity is None or not shape:
    return None
  size = 1
  for d in shape:
    size *= d
  item = {'float32': 4, 'float16': 2, 'int8': 1}.get(type_names.get(tensor.type))
  data = model.buffers[tensor.buffer].data if tensor.buffer < len(model.buffers) else None
  if item is None or data is None or not size:
    return None
  return 1.0 - len(data) / item / size


def _xnnpack_sparse_inference(op, weighted, op_names, machine):
  """Whether XNNPACK's sparse inference would take the op, with why (not)."""
  rules = XNNPACK_SPARSE_INFERENCE
  if op.op not in rules['ops']:
    return f'no: {op.op} is not an op of an XNNPACK sparse subgraph (1x1 CONV_2D in a CNN)'
  if op.op != 'CONV_2D' or op.kernel_size != (1, 1):
    return 'no: only 1x1 CONV_2D filters are computed sparse in XNNPACK'
  if not op.densified:
    return 'no: XNNPACK takes sparse weights only through DENSIFY, and these are stored dense'
  starts = any(o.op == 'CONV_2D' and o.kernel_size == (3, 3) and o.strides == (2, 2) and o.input_channels == 3
               for o in weighted)
  if not starts:
    return f'no: the graph has no {rules["start"]} to start a sparse subgraph'
  if not any(name in rules['end'] for name in op_names):
    return 'no: the graph has no spatial MEAN or DEPTH_TO_SPACE to end a sparse subgraph'
  pointwise = [o.zeros for o in weighted if o.op == 'CONV_2D' and o.kernel_size == (1, 1) and o.densified]
  if any(z is None for z in pointwise) or sum(pointwise) / len(pointwise) < rules['zero_fraction']:
    return 'no: fewer than 2/3 of the 1x1 CONV_2D weights are zero'
  return f'{EXPECTED}: the graph rules hold, for {rules["where"]}; this machine is {machine}'


def op_kernels(flatbuffer, checks, layer_of=None):
  """The `OpKernel` of every weighted op of a flatbuffer under each resolver checked.

  Args:
    flatbuffer: The TFLite model bytes.
    checks: {resolver: (passed, set of delegated op indices or None, error or None)} from running the file.
    layer_of: Optional callable, TFLite weight tensor name -> Keras layer name or None.

  Returns:
    A tuple of `OpKernel`s, by resolver (in the order of `checks`) and op index.
  """
  model = flatbuffer_lib.flatbuffer_tools().read_model_from_bytearray(bytearray(flatbuffer))
  weighted, op_names = _weighted_ops(model)
  machine = platform.machine() or 'unknown'
  kernels = []
  for resolver, (passed, delegated, error) in checks.items():
    default = resolver == interpreter_lib.DEFAULT_RESOLVER
    for op in weighted:
      builtin = next(rule for rule in BUILTIN_RULES if rule.matches(op))
      rule = builtin
      if default:
        rule = next(r for r in XNNPACK_RULES if r.matches(op))
        if not rule.delegated:
          rule = dataclasses.replace(builtin, reason=f'{rule.reason}; {builtin.reason}')
      kernel, sparse, reason = rule.kernel, rule.sparse, rule.reason
      if error is not None:
        status, kernel, sparse, reason = FAILS, 'none: the file does not load', False, f'{error} ({rule.reason})'
      elif not passed:
        status, reason = FAILS, f'wrong outputs under this resolver ({rule.reason})'
      elif delegated is None:
        status = EXPECTED
      elif (op.index in delegated) == rule.delegated and rule.loads:
        status = RUNS
      else:  # the interpreter placed the op otherwise, or ran a file the rule says fails: report what it did
        placed = 'took' if op.index in delegated else 'left to the built-in kernels'
        status = RUNS
        kernel, sparse = ('XNNPACK dense kernel', False) if op.index in delegated else (builtin.kernel, builtin.sparse)
        reason = f'the interpreter {placed} the op and the file passed, unlike the rule ({rule.reason})'
      xnnpack_sparse = _xnnpack_sparse_inference(op, weighted, op_names, machine) if default else ''
      kernels.append(OpKernel(op.index, op.op, layer_of(op.weight) if layer_of else None, op.compute, op.layout,
                              op.densified, resolver, kernel, sparse, status, reason, xnnpack_sparse))
  return tuple(kernels)
