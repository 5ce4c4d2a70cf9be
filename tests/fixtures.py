"""Small seeded models and data shared by the tests."""

import contextlib
import errno
import io
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

import numpy as np
import tensorflow as tf
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot.core import unit_plan


def assert_close_to_scale(test, got, want, rtol=1e-5):
  """Asserts |got - want| <= rtol * max |want| everywhere.

  For outputs of whole models computed two ways (TFLite and Keras, a shrunk
  and a masked model, two strategies): their rounding differs across CPUs
  and thread counts in proportion to the size of the values, so a fixed
  absolute tolerance that holds for logits of size 1 fails for logits of
  size 80 on another CPU.
  """
  want = np.asarray(want, np.float64)
  test.assertAllClose(got, want, rtol=0, atol=rtol * max(np.abs(want).max(), np.finfo(np.float32).tiny))


def mlp(seed=0, name='mlp'):
  """A 8-16-12-4 MLP (368 prunable weights) with seeded Glorot init."""
  init = lambda offset: keras.initializers.GlorotUniform(seed=seed + offset)
  return keras.Sequential([
      keras.layers.Dense(16, activation='relu', input_shape=(8,), kernel_initializer=init(0), name='hidden1'),
      keras.layers.Dense(12, activation='relu', kernel_initializer=init(1), name='hidden2'),
      keras.layers.Dense(4, kernel_initializer=init(2), name='output'),
  ], name=name)


def wrapped_mlp(**kwargs):
  """`mlp()` wrapped by `prune_lottery_ticket` and built; `schedule` (default rate 0.2) and the wrapper's arguments."""
  model = ltp_tfmot.prune_lottery_ticket(mlp(), kwargs.pop('schedule', ltp_tfmot.LotteryTicketSchedule(0.2)), **kwargs)
  model.build((None, 8))
  return model


def convnet(seed=0):
  """A functional CNN mixing Conv2D, DepthwiseConv2D, BatchNormalization and Dense."""
  init = lambda offset: keras.initializers.GlorotUniform(seed=seed + offset)
  inputs = keras.Input((8, 8, 2))
  x = keras.layers.Conv2D(4, 3, padding='same', kernel_initializer=init(0), name='conv')(inputs)
  x = keras.layers.BatchNormalization(name='bn')(x)
  x = keras.layers.DepthwiseConv2D(3, depthwise_initializer=init(1), name='depthwise')(x)
  x = keras.layers.Flatten(name='flatten')(x)
  outputs = keras.layers.Dense(3, kernel_initializer=init(2), name='output')(x)
  return keras.Model(inputs, outputs, name='convnet')


# Functional models whose units are tied (a residual Add, depthwise channels, a Flatten, a Concatenate): the
# structured (unit-granularity) tests.


def _glorot(seed):
  return keras.initializers.GlorotUniform(seed=seed)


def conv_flatten_net(seed=0):
  """Conv, pool, conv, Flatten into Dense: a filter becomes a block of Dense inputs."""
  inputs = keras.Input((8, 8, 2))
  x = keras.layers.Conv2D(6, 3, padding='same', activation='relu', kernel_initializer=_glorot(seed),
                          name='conv1')(inputs)
  x = keras.layers.MaxPooling2D(2, name='pool')(x)
  x = keras.layers.Conv2D(8, 3, activation='relu', kernel_initializer=_glorot(seed + 1), name='conv2')(x)
  x = keras.layers.Flatten(name='flatten')(x)
  x = keras.layers.Dense(10, activation='relu', kernel_initializer=_glorot(seed + 2), name='fc')(x)
  return keras.Model(inputs, keras.layers.Dense(3, kernel_initializer=_glorot(seed + 3), name='output')(x))


def residual_net(seed=0):
  """A stem and two residual blocks (identity, then strided with a projection), BatchNorm everywhere."""
  inputs = keras.Input((8, 8, 3))
  conv = lambda filters, size, strides, name: keras.layers.Conv2D(
      filters, size, strides=strides, padding='same', use_bias=False, kernel_initializer=_glorot(seed + len(name)),
      name=name)
  x = keras.layers.ReLU()(keras.layers.BatchNormalization(name='stem_bn')(conv(6, 3, 1, 'stem')(inputs)))
  for block, (filters, strides) in enumerate([(6, 1), (10, 2)]):
    name = f'block{block}'
    y = keras.layers.ReLU()(keras.layers.BatchNormalization(name=name + '_bn1')(conv(filters, 3, strides,
                                                                                       name + '_conv1')(x)))
    y = keras.layers.BatchNormalization(name=name + '_bn2')(conv(filters, 3, 1, name + '_conv2')(y))
    shortcut = x
    if strides > 1:
      shortcut = keras.layers.BatchNormalization(name=name + '_short_bn')(conv(filters, 1, strides,
                                                                             name + '_short')(x))
    x = keras.layers.ReLU()(keras.layers.Add(name=name + '_add')([y, shortcut]))
  x = keras.layers.GlobalAveragePooling2D()(x)
  return keras.Model(inputs, keras.layers.Dense(3, kernel_initializer=_glorot(seed), name='output')(x))


def mobilenet_v2_blocks(seed=0):
  """MobileNetV2-style inverted residuals: expand 1x1, depthwise 3x3, project 1x1, BatchNorm, ReLU6, Add."""
  inputs = keras.Input((8, 8, 4))
  x = keras.layers.Conv2D(8, 3, padding='same', use_bias=False, kernel_initializer=_glorot(seed), name='stem')(inputs)
  x = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization(name='stem_bn')(x))
  for block in range(2):
    name = f'block{block}'
    y = keras.layers.Conv2D(24, 1, use_bias=False, kernel_initializer=_glorot(seed + 10 * block + 1),
                            name=name + '_expand')(x)
    y = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization(name=name + '_expand_bn')(y))
    y = keras.layers.DepthwiseConv2D(3, padding='same', use_bias=False,
                                     depthwise_initializer=_glorot(seed + 10 * block + 2), name=name + '_depthwise')(y)
    y = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization(name=name + '_depthwise_bn')(y))
    y = keras.layers.Conv2D(8, 1, use_bias=False, kernel_initializer=_glorot(seed + 10 * block + 3),
                            name=name + '_project')(y)
    y = keras.layers.BatchNormalization(name=name + '_project_bn')(y)
    x = keras.layers.Add(name=name + '_add')([x, y])
  x = keras.layers.GlobalAveragePooling2D()(x)
  return keras.Model(inputs, keras.layers.Dense(3, kernel_initializer=_glorot(seed), name='output')(x))


def concat_net(seed=0):
  """Two conv branches (with biases) concatenated, then a 3x3 conv and Flatten into Dense."""
  inputs = keras.Input((6, 6, 2))
  a = keras.layers.Conv2D(4, 3, padding='same', activation='relu', kernel_initializer=_glorot(seed), name='a')(inputs)
  b = keras.layers.Conv2D(5, 1, activation='relu', kernel_initializer=_glorot(seed + 1), name='b')(inputs)
  x = keras.layers.Concatenate(name='concat')([a, b])
  x = keras.layers.Conv2D(6, 3, padding='same', activation='relu', kernel_initializer=_glorot(seed + 2), name='c')(x)
  x = keras.layers.Flatten()(x)
  return keras.Model(inputs, keras.layers.Dense(3, kernel_initializer=_glorot(seed + 3), name='output')(x))


def keras2_and_keras3_twins(keras3, seed=0, **settings):
  """A wrapped Keras 2 and a wrapped Keras 3 model of one architecture, holding the same weights.

  Conv2D, BatchNormalization (moving statistics set, variance positive) and
  two Dense layers on 6x6x1 inputs with 3 logits, wrapped alike; for
  comparing the two front ends.

  Args:
    keras3: The Keras 3 module (`import keras`), which these fixtures do not load themselves.
    seed: Seed of the weights.
    **settings: `prune_lottery_ticket` arguments.

  Returns:
    [Keras 2 model, Keras 3 model].
  """

  def layers(library):
    return [library.layers.Conv2D(4, 3, name='conv'), library.layers.BatchNormalization(name='norm'),
            library.layers.Flatten(name='flatten'), library.layers.Dense(16, activation='relu', name='hidden'),
            library.layers.Dense(3, name='output')]

  models = [library.Sequential([library.Input((6, 6, 1))] + layers(library)) for library in (keras, keras3)]
  rng = np.random.default_rng(seed)
  weights = [rng.standard_normal(w.shape).astype(np.float32) for w in models[0].get_weights()]
  weights[5] = np.abs(weights[5]) + 0.5  # the moving variance
  for model in models:
    model.set_weights(weights)
  return [ltp_tfmot.prune_lottery_ticket(model, **settings) for model in models]


def run_python(program, unset=()):
  """Runs a Python program in a fresh process with this one's module path and environment but `unset`.

  For what only a fresh process shows, such as which modules a program loads.

  Args:
    program: Python source.
    unset: Names of environment variables the program runs without.

  Returns:
    The `subprocess.CompletedProcess`, its output captured as text.
  """
  environment = {name: value for name, value in os.environ.items() if name not in unset}
  environment['PYTHONPATH'] = os.pathsep.join(sys.path)
  return subprocess.run([sys.executable, '-c', program], env=environment, capture_output=True, text=True, timeout=300,
                        check=False)


def _tiny(layer_fn, input_shape, dtype='float32'):
  def build():
    inputs = keras.Input(input_shape, dtype=dtype)
    return keras.Model(inputs, layer_fn()(inputs))
  return build


def _attention():
  inputs = keras.Input((3, 4))
  return keras.Model(inputs, keras.layers.MultiHeadAttention(2, 3, name='attention')(inputs, inputs))


# One tiny functional model per layer type the wrapper prunes: {name: (builder, input batch)}.
LAYER_MODELS = {
    'dense': (_tiny(lambda: keras.layers.Dense(3), (4,)), np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)),
    'conv2d': (_tiny(lambda: keras.layers.Conv2D(2, 2), (3, 3, 2)),
               np.linspace(-1, 1, 36, dtype=np.float32).reshape(2, 3, 3, 2)),
    'depthwise_conv2d': (_tiny(lambda: keras.layers.DepthwiseConv2D(2), (3, 3, 2)),
                         np.linspace(-1, 1, 36, dtype=np.float32).reshape(2, 3, 3, 2)),
    'separable_conv2d': (_tiny(lambda: keras.layers.SeparableConv2D(3, 2), (3, 3, 2)),
                         np.linspace(-1, 1, 36, dtype=np.float32).reshape(2, 3, 3, 2)),
    'lstm': (_tiny(lambda: keras.layers.LSTM(3), (3, 2)), np.linspace(-1, 1, 12, dtype=np.float32).reshape(2, 3, 2)),
    'gru': (_tiny(lambda: keras.layers.GRU(3), (3, 2)), np.linspace(-1, 1, 12, dtype=np.float32).reshape(2, 3, 2)),
    'bidirectional_rnn': (_tiny(lambda: keras.layers.Bidirectional(keras.layers.SimpleRNN(2)), (3, 2)),
                          np.linspace(-1, 1, 12, dtype=np.float32).reshape(2, 3, 2)),
    'multi_head_attention': (_attention, np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4)),
    'embedding': (_tiny(lambda: keras.layers.Embedding(6, 3), (2,), dtype='int32'),
                  np.array([[0, 5], [3, 1]], np.int32)),
}


def classification_data(n=64, features=8, classes=4, seed=0):
  rng = np.random.RandomState(seed)
  x = rng.randn(n, features).astype(np.float32)
  y = (x[:, :classes].argmax(axis=1)).astype(np.int64)
  return x, y


# The runner tests' data: (x_train, y_train, x_test, y_test) of 160 and 64 examples for `run_model_fn`.
RUN_DATA = classification_data(n=160, seed=0) + classification_data(n=64, seed=1)


def run_model_fn(input_shape, num_classes, seed):
  """`mlp(seed)` as the runner's model_fn, for `RUN_DATA`."""
  del input_shape, num_classes
  return mlp(seed)


def compile_for_training(model, learning_rate=0.01):
  model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=['accuracy'])
  return model


def masks_of(model):
  """{variable name: mask array} of every lottery wrapper."""
  import ltp_tfmot  # pylint: disable=g-import-not-at-top
  return {mask.name: mask.numpy() for w in ltp_tfmot.lottery_wrappers(model) for _, mask, _ in w.pruning_vars}


def perturb(model, seed=1, scale=0.5):
  """Stands in for training: moves every weight of the wrapped layers (pruned ones too)."""
  import ltp_tfmot  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(seed)
  for w in ltp_tfmot.lottery_wrappers(model):
    for weight in w.layer.weights:
      weight.assign_add(scale * rng.randn(*weight.shape).astype(np.float32))


def reference_keep(scores_list, alive_list, k):
  """NumPy stable-sort reference: the k best alive scores, the earlier ones (flat, then list order) on ties."""
  flat_scores = np.concatenate([np.ravel(s) for s in scores_list]).astype(np.float64)
  flat_alive = np.concatenate([np.ravel(a) for a in alive_list])
  candidates = np.flatnonzero(flat_alive)
  order = candidates[np.argsort(-flat_scores[candidates], kind='stable')]
  keep = np.zeros(flat_scores.size, bool)
  keep[order[:max(0, k)]] = True
  parts = np.split(keep, np.cumsum([np.size(s) for s in scores_list])[:-1])
  return [part.reshape(np.shape(s)) for part, s in zip(parts, scores_list, strict=True)]


class Subclassed(keras.Model):
  """A subclassed tf_keras model: its layers cannot be replaced from outside."""

  def __init__(self):
    super().__init__()
    self.dense = keras.layers.Dense(2)

  def call(self, inputs):
    return self.dense(inputs)


def write_cifar10(folder, train_per_batch=4, test=6, seed=0):
  """A small CIFAR-10 in the real format: cifar-10-batches-py/ with 5 pickled training batches and a test batch.

  Returns:
    (x_train, y_train, x_test, y_test): the uint8 NHWC images and labels written.
  """
  rng = np.random.RandomState(seed)
  root = os.path.join(folder, 'cifar-10-batches-py')
  os.makedirs(root)
  images, labels = [], []
  for name, n in [(f'data_batch_{i}', train_per_batch) for i in range(1, 6)] + [('test_batch', test)]:
    x = rng.randint(0, 256, (n, 32, 32, 3)).astype(np.uint8)
    y = rng.randint(0, 10, n)
    batch = {b'batch_label': name.encode(), b'labels': [int(v) for v in y],
             b'data': x.transpose(0, 3, 1, 2).reshape(n, 3072), b'filenames': [b'%d.png' % i for i in range(n)]}
    with open(os.path.join(root, name), 'wb') as f:
      pickle.dump(batch, f, protocol=2)
    images.append(x)
    labels.append(y)
  with open(os.path.join(root, 'batches.meta'), 'wb') as f:
    pickle.dump({b'label_names': [b'class%d' % i for i in range(10)]}, f, protocol=2)
  return np.concatenate(images[:5]), np.concatenate(labels[:5]), images[5], labels[5]


def split_cpu_in_two():
  """Makes the CPU two logical devices, for MirroredStrategy tests; call it from setUpModule."""
  cpus = tf.config.list_physical_devices('CPU')
  try:
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
  except RuntimeError:
    pass  # Already initialised (another test module ran first under pytest); the tests check the count.


def pruned(model, rate, input_shape=None, **kwargs):
  """`model` wrapped (`prune_lottery_ticket` with `kwargs`) and pruned to `rate` by one lottery round."""
  model = ltp_tfmot.prune_lottery_ticket(model, ltp_tfmot.OneShotLotterySchedule(rate, 1), **kwargs)
  if input_shape is not None:
    model.build(input_shape)
  ltp_tfmot.take_snapshot(model)
  ltp_tfmot.run_lottery_round(model)
  return model


def pruned_mlp(sizes=(784, 300, 100, 10), sparsity=0.9, block_size=(1, 1), seed=0):
  """A seeded MLP wrapped and pruned to `sparsity` (in blocks of `block_size`) by one lottery round."""
  init = lambda offset: keras.initializers.GlorotUniform(seed=seed + offset)
  layers = [keras.layers.Dense(sizes[1], activation='relu', input_shape=(sizes[0],), kernel_initializer=init(0),
                               bias_initializer='ones', name='h1')]
  layers += [keras.layers.Dense(n, activation='relu', kernel_initializer=init(i), name=f'h{i + 1}')
             for i, n in enumerate(sizes[2:-1], start=1)]
  layers.append(keras.layers.Dense(sizes[-1], kernel_initializer=init(9), name='out'))
  return pruned(keras.Sequential(layers), sparsity, (None, sizes[0]), block_size=block_size)


def uniform_inputs(n, features, seed=0):
  """`n` seeded inputs of `features` values in [0, 1): pixel-like calibration data and samples for exports."""
  return np.random.RandomState(seed).rand(n, features).astype(np.float32)


def run_tflite_file(path, x, op_resolver='AUTO'):
  """The output of a .tflite file on `x`, run by the ai-edge-litert interpreter under one resolver.

  Independent of ltp_tfmot's export package, so that the tests check the files it writes from outside.
  """
  from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top
  interpreter = litert.Interpreter(model_path=path,
                                   experimental_op_resolver_type=getattr(litert.OpResolverType, op_resolver))
  runner = interpreter.get_signature_runner()
  (name,) = runner.get_input_details()
  (output,) = runner(**{name: x}).values()
  return output


def run_cli(*args, hooks=None):
  """Runs `ltp-tfmot ARGS` in this process; returns (exit status, stdout, stderr)."""
  from ltp_tfmot import cli  # pylint: disable=g-import-not-at-top
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    status = cli.main(['ltp-tfmot'] + list(args), hooks=hooks)
  return status, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def read_only_folder(folder):
  """Inside, opening a file in `folder` fails as on a read-only file system (for root too, unlike a chmod)."""
  os_open = os.open

  def read_only_open(name, *args, **kwargs):
    if os.path.dirname(os.fspath(name)) == folder:
      raise OSError(errno.EROFS, os.strerror(errno.EROFS), name)
    return os_open(name, *args, **kwargs)

  with mock.patch.object(os, 'open', read_only_open):
    yield


def simulated_worker(strategy, task_type, task_id, cluster):
  """Inside, `strategy.cluster_resolver` says this process is `task_type:task_id` of `cluster` (a dict of jobs)."""
  resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
      tf.train.ClusterSpec(cluster), task_type=task_type, task_id=task_id)
  return mock.patch.object(strategy.extended, '_cluster_resolver', resolver, create=True)


def tiny_run_config(controls=(), **pruning):
  """A run of `run_model_fn` on `RUN_DATA` in seconds: rate 0.5, one pruned level, 10 iterations per level."""
  from ltp_tfmot import experiment  # pylint: disable=g-import-not-at-top
  pruning = dict({'rate': 0.5, 'layer_rates': {}, 'levels': 1}, **pruning)
  return experiment.RunConfig(
      model='mlp', data=experiment.DataConfig(name='toy'),
      training=experiment.TrainingConfig(learning_rate=0.01, batch_size=16, epochs=1, eval_every=3, jit_compile=False),
      pruning=experiment.PruningConfig(**pruning), controls=controls)


def finished_run(test_class, config):
  """Runs `config` of `run_model_fn` on `RUN_DATA` for a test class; returns its run directory (removed after)."""
  from ltp_tfmot import experiment  # pylint: disable=g-import-not-at-top
  out = tempfile.mkdtemp(prefix='ltp_run_')
  test_class.addClassCleanup(shutil.rmtree, out, ignore_errors=True)
  run_dir = os.path.join(out, 'run')
  experiment.LotteryExperiment(config, run_dir=run_dir, model_fn=run_model_fn, data=RUN_DATA, tensorboard=False,
                               log=lambda line: None).run()
  return run_dir


def file_stats(path):
  """{relative path: (size, mtime_ns)} of every file under `path`: what a test compares to see that nothing was
  written."""
  stats = {}
  for root, _, names in os.walk(path):
    for name in names:
      info = os.stat(os.path.join(root, name))
      stats[os.path.relpath(os.path.join(root, name), path)] = (info.st_size, info.st_mtime_ns)
  return stats


class PlainLayers:
  """A `layers` namespace whose classes are plain ones made on first use: Keras-free graphs and layers."""

  def __getattr__(self, name):
    cls = type(name, (), {})
    setattr(self, name, cls)
    return cls


def plain_layer_kinds():
  """`ltp_tfmot.core.unit_plan.LayerKinds` over a new `PlainLayers` (its `layers`) and a plain Model class."""
  return unit_plan.LayerKinds(PlainLayers(), type('Model', (), {}))


def unit_residual_net(library, filters=4):
  """A conv stem, a depthwise block added back to it and a dense head: units tied every way unit pruning knows.

  Args:
    library: `tf_keras` or `keras` (Keras 3): the same network in either.
    filters: The stem's (and the block's) filters.

  Returns:
    A functional model on (6, 6, 2) inputs with 3 outputs.
  """
  layers = library.layers
  inputs = library.Input((6, 6, 2))
  stem = layers.ReLU(name='stem_relu')(layers.BatchNormalization(name='stem_bn')(
      layers.Conv2D(filters, 3, padding='same', name='stem')(inputs)))
  x = layers.DepthwiseConv2D(3, padding='same', name='depthwise')(stem)
  x = layers.ReLU(name='depthwise_relu')(layers.BatchNormalization(name='depthwise_bn')(x))
  x = layers.BatchNormalization(name='project_bn')(layers.Conv2D(filters, 1, name='project')(x))
  x = layers.Add(name='add')([stem, x])
  x = layers.Flatten(name='flatten')(layers.MaxPooling2D(name='pool')(x))
  x = layers.Dense(8, activation='relu', name='fc')(x)
  return library.Model(inputs, layers.Dense(3, name='output')(x))


def train_wrappers_a_little(model, seed):
  """Moves every weight of a wrapped model's wrapped layers, as training would, by seeded amounts.

  The same seed moves the weights of twin models (a Keras 2 and a Keras 3 one) by the same amounts.
  """
  rng = np.random.default_rng(seed)
  for w in ltp_tfmot.lottery_wrappers(model):
    for weight in w.layer.weights:
      weight.assign(np.asarray(weight) + rng.standard_normal(weight.shape).astype(np.float32))


def wrapper_masks(model):
  """{wrapped layer name: its masks as NumPy arrays} of a wrapped model (either front end)."""
  return {w.layer.name: [np.asarray(m) for m in w.masks] for w in ltp_tfmot.lottery_wrappers(model)}


def assert_same_masks(test, want, got):
  """Asserts two `wrapper_masks` results name the same layers and hold equal masks."""
  test.assertEqual(sorted(want), sorted(got))
  for name, layer_masks in want.items():
    for want_mask, got_mask in zip(layer_masks, got[name], strict=True):
      test.assertAllEqual(got_mask, want_mask, msg=name)


def masks_after_rounds(models, train_seeds, **prune_arguments):
  """The `wrapper_masks` of each model after rounds: wrapped, snapshot taken, then per seed moved and pruned.

  Args:
    models: Models (twins of both front ends) to wrap with `ltp_tfmot.prune_lottery_ticket(**prune_arguments)`.
    train_seeds: One seed per round, for `train_wrappers_a_little` before the round's `compute_next_masks`.
    **prune_arguments: The wrapping arguments.

  Returns:
    A list of `wrapper_masks` results, one per model.
  """
  masks = []
  for model in models:
    wrapped = ltp_tfmot.prune_lottery_ticket(model, **prune_arguments)
    ltp_tfmot.take_snapshot(wrapped)
    for seed in train_seeds:
      train_wrappers_a_little(wrapped, seed=seed)
      ltp_tfmot.compute_next_masks(wrapped)
    masks.append(wrapper_masks(wrapped))
  return masks
