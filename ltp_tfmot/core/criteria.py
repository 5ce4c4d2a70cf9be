"""Mask criteria: how weights are ranked for pruning, by name (shared by both Keras front ends).

A criterion gives every weight a score from its value at the rewind point
(`initial`) and its trained value (`final`); the highest scores are kept. The
built-in criteria are those of Zhou et al. (2019), "Deconstructing Lottery
Tickets", and the pruning-at-initialization criteria SNIP, GraSP and SynFlow
(`ModelCriterion`: they score from the model's gradients, see
`ltp_tfmot.prune_at_initialization`); `register_criterion` adds your own.
"""

import contextlib
import importlib

import tensorflow as tf

from ltp_tfmot import validation

_REGISTRY = validation.Registry('criterion', 'add your own with ltp_tfmot.register_criterion')


class Criterion:
  """A named rule that scores weights; higher scores are kept.

  Args:
    name: The name the criterion is looked up by.
    score_fn: `score_fn(initial, final) -> scores`, elementwise on tensors of
      one shape, made of TensorFlow ops: it is traced and, for large tensors,
      compiled with XLA into the pass that ranks the weights. `initial` is
      None for a criterion with `needs_initial=False`.
    needs_initial: Whether the scores depend on the rewind snapshot, so that
      pruning must wait until a snapshot has been taken.
    description: One line for tables and `--help` output.

  Example:

  ```python
  ltp_tfmot.register_criterion(ltp_tfmot.Criterion(
      'large_final_small_init', lambda wi, wf: tf.abs(wf) - 2 * tf.abs(wi)))
  ```
  """

  elementwise = True
  needs_model = False

  def __init__(self, name, score_fn, needs_initial=True, description=''):
    if not isinstance(name, str) or not name:
      raise ValueError(f'name must be a non-empty string, got {name!r}')
    if not callable(score_fn):
      raise TypeError(f'score_fn must be callable, got {type(score_fn).__name__}')
    self.name = name
    self.needs_initial = bool(needs_initial)
    self.description = description
    self._score_fn = score_fn

  def score(self, initial, final, alive, seed):
    """Scores the weights of one tensor (or, if not elementwise, one pool).

    Args:
      initial: Weights at the rewind point, or None when not `needs_initial`.
      final: Trained weights.
      alive: Bool tensor, True where the weight is not pruned yet.
      seed: A shape-[2] int seed for criteria that draw random numbers.

    Returns:
      A float tensor shaped like `final`.
    """
    del alive, seed
    return self._score_fn(initial, final)

  @property
  def score_fn(self):
    """The `score_fn(initial, final)` this criterion was made with (a `ModelCriterion`'s `score_model_fn`)."""
    return self._score_fn

  @property
  def fusable(self):
    """Whether `score_fn` gives the scores, so the mask pass can compute them itself.

    False for subclasses that override `score` (random draws, ranks over a
    pool): their scores are computed first and then ranked.
    """
    return type(self).score is Criterion.score

  def __repr__(self):
    return f'Criterion({self.name!r})'


class _RandomCriterion(Criterion):
  """Uniform random scores from a stateless seed: the random-pruning control."""

  def __init__(self):
    super().__init__('random', lambda wi, wf: wf, needs_initial=False,
                     description='uniform random scores (random-pruning control)')

  def score(self, initial, final, alive, seed):
    return tf.random.stateless_uniform(tf.shape(final), seed=seed, dtype=tf.float32)


def _alive_ranks(values, alive):
  """Rank of each value among the alive ones (0 = smallest); dead rank lowest."""
  values = tf.where(alive, tf.cast(values, tf.float32), float('-inf'))
  order = tf.argsort(values, stable=True)
  return tf.scatter_nd(order[:, None], tf.range(tf.size(values), dtype=tf.float32), tf.shape(values))


class _BothAbovePercentile(Criterion):
  """Keeps weights whose |initial| and |final| both rank above one percentile.

  The score is the lower of the two ranks among alive weights, so keeping the k
  highest scores keeps exactly the weights above the percentile q at which k
  weights pass both tests. Ranks depend on the whole pool, so in global scope
  the pool is scored as one tensor.
  """

  elementwise = False

  def __init__(self, name, sign, description):
    super().__init__(name, lambda wi, wf: wf, needs_initial=True, description=description)
    self._sign = sign

  def score(self, initial, final, alive, seed):
    return tf.minimum(_alive_ranks(self._sign * tf.abs(initial), alive),
                      _alive_ranks(self._sign * tf.abs(final), alive))


def _same_sign_first(keep_same):
  """Scores |final| where the sign test passes; all others rank below them."""

  def score_fn(initial, final):
    magnitude = tf.abs(final)
    same = tf.equal(tf.sign(initial), tf.sign(final))
    passes = same if keep_same else tf.logical_not(same)
    # -1 / (1 + |w|) is negative and still orders the failing weights by |w|.
    return tf.where(passes, magnitude, -1.0 / (1.0 + magnitude))

  return score_fn


class ModelCriterion(Criterion):
  """A criterion that scores weights from the whole model: its gradients on data, or its outputs.

  The criteria of pruning at initialization (SNIP, GraSP, SynFlow; compared by
  Frankle et al. 2021, "Pruning Neural Networks at Initialization: Why Are We
  Missing the Mark?") rank a weight by what it does in the network, not by its
  value alone. `ltp_tfmot.prune_at_initialization` computes their scores for
  all the prunable weights of a wrapped model at once and ranks them with the
  exact-count selection every criterion shares; `run_lottery_round(model,
  data=...)` uses them between rounds of training, scoring the rewind point.

  Args:
    name: The name the criterion is looked up by.
    score_model_fn: `score_model_fn(model, kernels, batch, loss) -> scores`.
      `model` is a wrapped Keras model (its lottery wrappers apply the masks
      in the forward pass, so pruned weights count as 0), `kernels` the
      prunable weight variables to score, `batch` a tuple `(x, y)` of tensors
      (None when `needs_data` is False) and `loss` a function `loss(y,
      outputs)` giving a scalar (None when `needs_data` is False). It returns
      one float tensor per kernel, shaped like it, made of TensorFlow ops,
      and leaves every variable of the model as it found it.
    needs_data: Whether the scores need a batch of labelled data.
    iterations: How many pruning iterations `prune_at_initialization` runs by
      default (each one re-scores the weights still alive).
    description: One line for tables and `--help` output.

  Raises:
    ValueError: for an empty name or `iterations` < 1.
    TypeError: if `score_model_fn` is not callable, or `iterations` not an integer.

  Example:

  ```python
  def gradient_magnitude(model, kernels, batch, loss):
    x, y = batch
    with tf.GradientTape() as tape:
      value = loss(y, model(x, training=False))
    return [tf.abs(g) for g in tape.gradient(value, kernels)]

  ltp_tfmot.register_criterion(ltp_tfmot.ModelCriterion('gradient_magnitude', gradient_magnitude))
  ```
  """

  needs_model = True

  def __init__(self, name, score_model_fn, needs_data=True, iterations=1, description=''):
    if not callable(score_model_fn):
      raise TypeError(f'score_model_fn must be callable, got {type(score_model_fn).__name__}')
    iterations = validation.check_int(iterations, 'iterations', minimum=1)
    super().__init__(name, score_model_fn, needs_initial=False, description=description)
    self.needs_data = bool(needs_data)
    self.iterations = iterations

  def score(self, initial, final, alive, seed):
    raise ValueError(f'criterion {self.name!r} scores weights from the model and data, not from their values '
                     f'alone: compute its masks with ltp_tfmot.prune_at_initialization(model, {self.name!r}, ...)')

  def batch(self, data):
    """The batch the scores are computed on: `data` checked and made tensors.

    Args:
      data: One batch `(x, y)` of inputs and labels (arrays or tensors), a
        `tf.data.Dataset` of such batches (its first batch is taken), or None.

    Returns:
      `(x, y)` tensors, or None for None.

    Raises:
      ValueError: for no data when the criterion `needs_data`, or data that is
        not a non-empty batch with one label per example.
    """
    if data is None:
      if self.needs_data:
        raise ValueError(f'criterion {self.name!r} scores from gradients on data: pass data=(x, y), a batch of '
                         'training examples and their labels')
      return None
    if isinstance(data, tf.data.Dataset):
      data = next(iter(data.take(1)), None)
      if data is None:
        raise ValueError('data is an empty tf.data.Dataset: give it at least one batch (x, y)')
    if not isinstance(data, (tuple, list)) or len(data) != 2:
      raise ValueError('data must be one batch (x, y) of inputs and labels, or a tf.data.Dataset of such batches, '
                       f'got {type(data).__name__}')
    x, y = tf.nest.map_structure(tf.convert_to_tensor, data[0]), tf.convert_to_tensor(data[1])
    sizes = {int(t.shape[0]) if t.shape.rank else -1 for t in tf.nest.flatten(x) + [y]}
    if len(sizes) != 1 or sizes.pop() <= 0:
      raise ValueError(f'data must be a non-empty batch (x, y) with one label per example, got inputs of shapes '
                       f'{[tuple(t.shape) for t in tf.nest.flatten(x)]} and labels of shape {tuple(y.shape)}')
    return x, y

  def score_model(self, model, kernels, batch):
    """Scores the prunable weights of a wrapped model.

    The loss of a criterion that `needs_data` is the model's compiled loss (a
    model compiled with one loss), else sparse categorical cross-entropy on
    logits, averaged over the batch.

    Args:
      model: A Keras model holding lottery wrappers.
      kernels: The weight variables to score.
      batch: `(x, y)` tensors from `batch(data)`, or None.

    Returns:
      A list of float32 tensors, one per kernel, shaped like it.

    Raises:
      ValueError: for a model compiled with several losses, or scores of the
        wrong number or shapes.
    """
    kernels = list(kernels)
    scores = list(self.score_fn(model, kernels, batch, _loss_of(model) if self.needs_data else None))
    if len(scores) != len(kernels) or any(
        tuple(s.shape) != tuple(k.shape) for s, k in zip(scores, kernels, strict=True)):
      raise ValueError(f'criterion {self.name!r} returned scores of shapes {[tuple(s.shape) for s in scores]} for '
                       f'kernels of shapes {[tuple(k.shape) for k in kernels]}: return one score tensor per kernel, '
                       'shaped like it')
    return [tf.cast(s, tf.float32) for s in scores]


def _loss_of(model):
  """`loss(y, outputs)`, a scalar: the model's compiled loss, else cross-entropy on logits; batch mean.

  A loss given by name is looked up in the model's own Keras (tf_keras or
  Keras 3), so that this module loads neither.
  """
  loss = getattr(model, 'loss', None)
  if loss is None:
    return lambda y, logits: tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        tf.cast(y, tf.int32), tf.cast(logits, tf.float32)))
  if isinstance(loss, (dict, list, tuple)):
    raise ValueError('the model is compiled with one loss per output; data-dependent criteria need one loss: '
                     'compile it with a single loss')
  if isinstance(loss, str):
    keras_package = next(package for package in (cls.__module__.split('.')[0] for cls in type(model).__mro__)
                         if package in ('keras', 'tf_keras'))
    loss = importlib.import_module(keras_package).losses.get(loss)
  # A loss function (not a Loss object) returns one value per example.
  return lambda y, outputs: tf.reduce_mean(loss(y, outputs))


def _gradients(tape, target, variables):
  """`tape.gradient` as dense tensors, zeros for a variable the target does not depend on."""
  return [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
          for g, v in zip(tape.gradient(target, variables), variables, strict=True)]


def _snip_scores(model, kernels, batch, loss):
  """SNIP (Lee et al. 2019): |dL/dw * w|, the first-order change of the loss when a weight is removed."""
  x, y = batch
  with tf.GradientTape() as tape:
    value = loss(y, model(x, training=False))
  return [tf.abs(g * w) for g, w in zip(_gradients(tape, value, kernels), kernels, strict=True)]


def _grasp_scores(model, kernels, batch, loss):
  """GraSP (Wang et al. 2020), negated: w * (H g), H the Hessian of the loss and g its gradient.

  GraSP's score is S = -w * (H g), and GraSP removes the weights of highest S
  (whose removal reduces the gradient flow least, or increases it). Keeping
  the highest -S is the same rule in this registry's keep-the-highest form.
  The loss is the plain one: the logits are not divided by a temperature, as
  GraSP's own code does (T = 200), and H g comes from the same batch as g.
  """
  x, y = batch
  with tf.GradientTape() as outer:
    with tf.GradientTape() as inner:
      value = loss(y, model(x, training=False))
    gradients = _gradients(inner, value, kernels)
    # The gradient of g . stop_gradient(g) is H g: a Hessian-gradient product without forming H.
    flow = tf.add_n([tf.reduce_sum(g * tf.stop_gradient(g)) for g in gradients])
  return [w * hg for w, hg in zip(kernels, _gradients(outer, flow, kernels), strict=True)]


def _ones_input(model, batch):
  """SynFlow's input: one example of all ones, shaped as the model's inputs (else as the batch's examples)."""
  inputs = getattr(model, 'inputs', None)
  if inputs and all(None not in t.shape[1:] for t in inputs):
    ones = [tf.ones([1, *t.shape[1:]], t.dtype) for t in inputs]
    return ones[0] if len(ones) == 1 else ones
  if batch is None:
    raise ValueError('synflow feeds an input of all ones shaped like the model\'s input, and this model has no fixed '
                     'input shape: build it with keras.Input(shape) or pass data=(x, y) to take the shape of x')
  return tf.nest.map_structure(lambda x: tf.ones_like(x[:1]), batch[0])


@contextlib.contextmanager
def _absolute_weights(model):
  """Replaces every float variable of the model by its absolute value until the block ends."""
  variables = [v for v in model.variables if tf.as_dtype(v.dtype).is_floating]
  saved = [tf.identity(v) for v in variables]
  try:
    for v in variables:
      v.assign(tf.abs(v))
    yield
  finally:
    for v, value in zip(variables, saved, strict=True):
      v.assign(value)


def _synflow_scores(model, kernels, batch, loss):
  """SynFlow (Tanaka et al. 2020): |dR/dw * w| with all weights made positive, R the sum of outputs for ones.

  Data-free: the input is one example of all ones whatever `batch` holds. The
  model runs in inference mode (BatchNormalization with its moving statistics,
  made positive like every other weight, as in the paper), and the signed
  weights are back when the scores are returned.
  """
  del loss  # data-free
  inputs = _ones_input(model, batch)
  with _absolute_weights(model):
    with tf.GradientTape() as tape:
      flow = tf.add_n([tf.reduce_sum(tf.cast(out, tf.float32))
                       for out in tf.nest.flatten(model(inputs, training=False))])
    return [tf.abs(g * w) for g, w in zip(_gradients(tape, flow, kernels), kernels, strict=True)]


class _Inverted(Criterion):
  """A criterion's scores negated: it keeps what the criterion would prune."""

  def __init__(self, base):
    super().__init__(inverted_name(base.name), base.score_fn, needs_initial=base.needs_initial,
                     description=f'{base.name} inverted: keeps the weights it would prune')
    self.base = base
    self.elementwise = base.elementwise

  def score(self, initial, final, alive, seed):
    return -self.base.score(initial, final, alive, seed)


def inverted_name(name):
  """The registry name of a criterion's inversion (`inverted_criterion`)."""
  return f'{name}_inverted'


def inverted_criterion(criterion):
  """The criterion that keeps the weights `criterion` would prune (its scores negated), registered.

  The inversion ablation of Frankle et al. (2021), "Pruning Neural Networks
  at Initialization: Why Are We Missing the Mark?": if a method's masks mean
  anything, keeping its lowest-scored weights instead should hurt. Masks keep
  the same counts (per layer, or globally in global scope) and, as for every
  criterion, never revive a pruned weight.

  Args:
    criterion: A registered criterion's name, or a `Criterion`.

  Returns:
    The inverted criterion, registered as '<name>_inverted' (the same object
    on every call).

  Raises:
    ValueError: for an unknown criterion, or when '<name>_inverted' is taken
      by a criterion that is not this inversion.

  Example:

  ```python
  model = ltp_tfmot.prune_lottery_ticket(
      model, ltp_tfmot.LotteryTicketSchedule(0.2),
      criterion=ltp_tfmot.inverted_criterion('snip').name)
  ```
  """
  base = get_criterion(criterion)
  name = inverted_name(base.name)
  if name in _REGISTRY:
    registered = _REGISTRY.get(name)
    if getattr(registered, 'base', None) is not base:
      raise ValueError(f'a criterion named {name!r} is registered that is not the inversion of {base.name!r}: '
                       'rename that criterion')
    return registered
  if base.needs_model:
    inverted = ModelCriterion(name, lambda *arguments: [-s for s in base.score_fn(*arguments)],
                              needs_data=base.needs_data, iterations=base.iterations,
                              description=f'{base.name} inverted: keeps the weights it would prune')
    inverted.base = base
  else:
    inverted = _Inverted(base)
  return register_criterion(inverted)


def register_criterion(criterion, overwrite=False):
  """Adds a criterion to the registry so it can be used by name.

  Args:
    criterion: A `Criterion`.
    overwrite: Whether to replace a criterion already registered by that name.

  Returns:
    The criterion.

  Raises:
    TypeError: if `criterion` is not a `Criterion`.
    ValueError: if the name is taken and `overwrite` is False.
  """
  if not isinstance(criterion, Criterion):
    raise TypeError(f'criterion must be a ltp_tfmot.Criterion, got {type(criterion).__name__}')
  return _REGISTRY.register(criterion.name, criterion, overwrite=overwrite)


def get_criterion(name_or_criterion):
  """Returns the registered criterion of that name, or a `Criterion` object, registering it on first use.

  A `Criterion` passed where a name is expected (e.g.
  `prune_lottery_ticket(criterion=...)`) is registered under its name, so that
  the wrappers, which keep the name, find it at every round and when a saved
  model is loaded in this process.

  Raises:
    ValueError: for an unknown name (the message lists the known ones), or a
      `Criterion` whose name is taken by another registered criterion.
  """
  if isinstance(name_or_criterion, Criterion):
    if name_or_criterion.name not in _REGISTRY:
      return register_criterion(name_or_criterion)
    registered = _REGISTRY.get(name_or_criterion.name)
    if registered is not name_or_criterion:
      raise ValueError(f'criterion {name_or_criterion!r} has the name of another registered criterion '
                       f'({registered!r}): give it another name, or replace the registered one with '
                       'ltp_tfmot.register_criterion(criterion, overwrite=True)')
    return registered
  return _REGISTRY.get(name_or_criterion)


def criterion_names():
  """Names of all registered criteria, sorted."""
  return _REGISTRY.names()


def score_pool(criterion, initials, finals, alives, seed):
  """Scores a pool of weight tensors that will share one ranking.

  Elementwise criteria score each tensor on its own (tensor `i` gets the seed
  `(seed, i)`); pool-dependent ones score the flattened, concatenated pool.

  Args:
    criterion: A `Criterion`.
    initials: Rewind-point tensors (None, or a list of None, for criteria not
      needing them).
    finals: Trained tensors.
    alives: Bool tensors, True where not pruned yet.
    seed: An int seed.

  Returns:
    A list of float tensors shaped like `finals`.
  """
  if initials is None:
    initials = [None] * len(finals)
  if criterion.elementwise:
    return [criterion.score(wi, wf, alive, tf.constant([seed, i], tf.int64))
            for i, (wi, wf, alive) in enumerate(zip(initials, finals, alives, strict=True))]
  flat = lambda tensors: tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)
  scores = criterion.score(flat(initials), flat(finals), flat(alives), tf.constant([seed, 0], tf.int64))
  sizes = [int(tf.size(wf)) for wf in finals]
  return [tf.reshape(part, tf.shape(wf)) for part, wf in zip(tf.split(scores, sizes), finals, strict=True)]


_BUILTIN_CRITERIA = (
    Criterion('large_final', lambda wi, wf: tf.abs(wf), needs_initial=False,
              description='|w_f|: keep the largest trained weights'),
    Criterion('small_final', lambda wi, wf: -tf.abs(wf), needs_initial=False,
              description='-|w_f|: keep the smallest trained weights'),
    Criterion('large_init', lambda wi, wf: tf.abs(wi),
              description='|w_i|: keep the largest weights at the rewind point'),
    Criterion('small_init', lambda wi, wf: -tf.abs(wi),
              description='-|w_i|: keep the smallest weights at the rewind point'),
    _BothAbovePercentile('large_init_large_final', 1.0,
                         '|w_i| and |w_f| both above one percentile'),
    _BothAbovePercentile('small_init_small_final', -1.0,
                         '|w_i| and |w_f| both below one percentile'),
    Criterion('magnitude_increase', lambda wi, wf: tf.abs(wf) - tf.abs(wi),
              description='|w_f| - |w_i|: keep the weights that grew most'),
    Criterion('movement', lambda wi, wf: tf.abs(wf - wi),
              description='|w_f - w_i|: keep the weights that moved most'),
    _RandomCriterion(),
    Criterion('large_final_same_sign', _same_sign_first(True),
              description='|w_f| where sign(w_i) == sign(w_f), the others last'),
    Criterion('large_final_diff_sign', _same_sign_first(False),
              description='|w_f| where sign(w_i) != sign(w_f), the others last'),
    ModelCriterion('snip', _snip_scores,
                   description='|dL/dw * w| on a batch (SNIP): pruning at initialization'),
    ModelCriterion('grasp', _grasp_scores,
                   description='w * Hg on a batch (GraSP, negated): pruning at initialization'),
    ModelCriterion('synflow', _synflow_scores, needs_data=False, iterations=100,
                   description='|dR/dw * w| of |weights| on ones, 100 iterations (SynFlow): data-free'),
)
# validation lists these names so that the command line checks --criterion without TensorFlow: the module does
# not load while the lists differ (a criterion added here alone would be refused by name).
_BUILTIN_NAMES = (tuple(c.name for c in _BUILTIN_CRITERIA), tuple(c.name for c in _BUILTIN_CRITERIA if c.needs_model))
if _BUILTIN_NAMES != (validation.BUILTIN_CRITERIA, validation.BUILTIN_MODEL_CRITERIA):
  raise ImportError(f'ltp_tfmot.validation.(BUILTIN_CRITERIA, BUILTIN_MODEL_CRITERIA) must be {_BUILTIN_NAMES}: the '
                    'criteria ltp_tfmot.core.criteria registers, and those of them that score from the model')
for _criterion in _BUILTIN_CRITERIA:
  register_criterion(_criterion)
