"""The bad-input matrix: every public entry point, called wrongly, raises a clear error and changes nothing.

Each case is (name, call, exception type, message regex). `call(env)` gets the shared models, pruner and
files of `_Env`; the test records every variable of every model of the environment (masks, snapshots and
round counters included), the pruners' masks, the criterion registry and every file under the temporary
directory (names and bytes) before the call, and checks that all of it is the same afterwards.

`REGRESSION_CASES` are the bugs this matrix found, each with what the fixed library does.
"""

import contextlib
import io
import os
import shutil
import tempfile

from absl.testing import parameterized
import keras as keras3
import numpy as np
import tensorflow as tf
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_schedule as tfmot_schedule
import tf_keras as keras

import ltp_tfmot
from ltp_tfmot import cli
from ltp_tfmot import experiment
from ltp_tfmot.experiment import storage
from tests import fixtures

X, Y = fixtures.classification_data(n=40)
X_TEST, Y_TEST = fixtures.classification_data(n=12, seed=1)
DATA = (X, Y, X_TEST, Y_TEST)


class _Subclassed(keras.Model):
  """A subclassed tf_keras model (its layers cannot be replaced from outside)."""

  def __init__(self):
    super().__init__(name='subclassed')
    self.hidden = keras.layers.Dense(4, name='hidden')

  def call(self, inputs):
    return self.hidden(inputs)


class _SubclassedWrapped(keras.Model):
  """A subclassed model that wraps its layer itself, as prune_lottery_ticket's error message advises."""

  def __init__(self):
    super().__init__(name='subclassed_wrapped')
    self.hidden = ltp_tfmot.prune_lottery_ticket(keras.layers.Dense(4, name='hidden'),
                                                 ltp_tfmot.LotteryTicketSchedule(0.5))

  def call(self, inputs):
    return self.hidden(inputs)


def _mlp(sizes=(16, 12, 4), names=('hidden1', 'hidden2', 'output'), input_shape=(8,), seed=0):
  layers = []
  # Fewer sizes than names builds a shorter model, named from the front.
  for i, (size, name) in enumerate(zip(sizes, names, strict=False)):
    kwargs = {'input_shape': input_shape} if i == 0 and input_shape else {}
    layers.append(keras.layers.Dense(size, name=name, kernel_initializer=keras.initializers.GlorotUniform(seed + i),
                                     **kwargs))
  return keras.Sequential(layers)


def _wrapped(model=None, snapshot=True, rounds=0, schedule=None, **kwargs):
  model = ltp_tfmot.prune_lottery_ticket(model if model is not None else fixtures.mlp(),
                                         schedule or ltp_tfmot.LotteryTicketSchedule(0.5), **kwargs)
  model.build((None, 8))
  if snapshot:
    ltp_tfmot.take_snapshot(model)
  for r in range(rounds):
    fixtures.perturb(model, seed=r)
    ltp_tfmot.run_lottery_round(model)
  return model


def _keras3_model():
  return keras3.Sequential([keras3.Input((8,)), keras3.layers.Dense(4)])


def _fake_run_dir(path, config):
  """A run directory as LotteryExperiment leaves it, for `config` (another run than the cases')."""
  os.makedirs(os.path.join(path, 'replicate_0', 'level_0', 'main'))
  storage.write_json(os.path.join(path, 'config.json'),
                     {'config': config.to_dict(), 'data': {'fingerprint': 'x'}, 'model_fingerprint': 'y'})
  with open(os.path.join(path, 'replicate_0', 'level_0', 'main', 'notes.txt'), 'w') as f:
    f.write('level 0 was here\n')


class _Env:
  """Everything the cases call entry points on, built once."""

  def __init__(self, root):
    self.root = root
    self.plain = fixtures.mlp()
    self.other_plain = _mlp(sizes=(16, 10, 4))                   # another architecture
    self.nan_plain = fixtures.mlp()                                # the plain model's architecture, a NaN weight
    self.nan_plain.layers[1].kernel[0, 0].assign(float('nan'))
    self.unbuilt_plain = keras.Sequential([keras.layers.Dense(4, name='hidden')])
    self.no_prunable = keras.Sequential([keras.layers.Flatten(input_shape=(2, 4)), keras.layers.Dropout(0.1)])
    self.subclassed = _Subclassed()
    self.subclassed(X[:1])
    self.keras3 = _keras3_model()
    self.subclassed_wrapped = _SubclassedWrapped()
    self.subclassed_wrapped(X[:1])
    ltp_tfmot.take_snapshot(self.subclassed_wrapped)
    ltp_tfmot.run_lottery_round(self.subclassed_wrapped)
    fixtures.perturb(self.subclassed_wrapped, seed=8)

    self.wrapped = _wrapped(rounds=1)
    fixtures.perturb(self.wrapped, seed=9)                                 # pruned weights nonzero: masking would show
    self.unsnapped = _wrapped(snapshot=False)
    self.unsnapped_large_init = _wrapped(snapshot=False, criterion='large_init')
    self.unbuilt = ltp_tfmot.prune_lottery_ticket(_mlp(input_shape=None))
    self.nan_wrapped = _wrapped()
    ltp_tfmot.lottery_wrappers(self.nan_wrapped)[1].layer.kernel[2, 3].assign(float('nan'))
    self.other_sizes = _wrapped(_mlp(sizes=(16, 10, 4)))
    self.global_a = _wrapped(scope='global', schedule=ltp_tfmot.LotteryTicketSchedule(0.2))
    self.global_b = _wrapped(fixtures.mlp(name='mlp_b'), scope='global', schedule=ltp_tfmot.LotteryTicketSchedule(0.5))
    self.late_rewind = _wrapped(schedule=ltp_tfmot.LotteryTicketSchedule(0.2, round_steps=2, rounds=1),
                                snapshot=False)
    for w in ltp_tfmot.lottery_wrappers(self.late_rewind):
      w.rewind_step = 5                                            # as a loaded model with a bad config would be
    first = ltp_tfmot.prune_lottery_ticket(keras.layers.Dense(4, input_shape=(8,), name='first'),
                                           ltp_tfmot.LotteryTicketSchedule(0.2, round_steps=2, rounds=1))
    second = ltp_tfmot.prune_lottery_ticket(keras.layers.Dense(2, name='second'),
                                            ltp_tfmot.LotteryTicketSchedule(0.5, round_steps=2, rounds=1))
    self.mixed_schedules = keras.Sequential([first, second])

    self.pruner = ltp_tfmot.LotteryTicketPruner(self.plain, seed=0)
    self.pruner.calc_prune_mask(self.plain, 0.5, 'smallest_weights')
    self.nan_pruner = ltp_tfmot.LotteryTicketPruner(self.plain, seed=0)
    self.nan_pruner.set_pretrained_weights(self.nan_plain)

    self.runs = os.path.join(root, 'runs')
    self.other_run = os.path.join(self.runs, 'other_run')
    _fake_run_dir(self.other_run, experiment.RunConfig(model='tiny', data=experiment.DataConfig(name='tiny'), seed=5))
    self.foreign = os.path.join(self.runs, 'foreign')
    os.makedirs(self.foreign)
    with open(os.path.join(self.foreign, 'notes.txt'), 'w') as f:
      f.write('not a run\n')

    self.tickets = os.path.join(root, 'tickets')
    os.makedirs(self.tickets)
    self.ticket = os.path.join(self.tickets, 'ticket.npz')
    ltp_tfmot.save_ticket(self.wrapped, self.ticket)
    with open(self.ticket, 'rb') as f:
      content = f.read()
    self.truncated = os.path.join(self.tickets, 'truncated.npz')
    with open(self.truncated, 'wb') as f:
      f.write(content[:len(content) // 2])
    self.foreign_npz = os.path.join(self.tickets, 'foreign.npz')
    np.savez(self.foreign_npz, weights=np.ones(3))
    self.text_file = os.path.join(self.tickets, 'ticket.txt')
    with open(self.text_file, 'w') as f:
      f.write('not a ticket\n')
    self.exports = os.path.join(root, 'exports')
    os.makedirs(self.exports)

  def models(self):
    return {name: value for name, value in vars(self).items()
            if isinstance(value, (keras.Model, keras3.Model, keras.layers.Layer))}

  def pruners(self):
    return {'pruner': self.pruner, 'nan_pruner': self.nan_pruner}

  def tiny_config(self, **pruning):
    """A small experiment on DATA with a model_fn; fields of PruningConfig as keyword arguments."""
    training = pruning.pop('training', experiment.TrainingConfig(epochs=1, batch_size=8, eval_every=2))
    return experiment.RunConfig(model='tiny', data=experiment.DataConfig(name='tiny'), training=training,
                                pruning=experiment.PruningConfig(levels=1, **pruning))

  def run_tiny(self, config=None, model_fn=None, data=DATA, **kwargs):
    kwargs.setdefault('out_dir', None if 'run_dir' in kwargs else self.runs)
    return experiment.LotteryExperiment(
        config or self.tiny_config(), model_fn=model_fn or (lambda shape, classes, seed: fixtures.mlp(seed)),
        data=data, tensorboard=False, log=lambda line: None, **kwargs).run()


def _variables(model):
  return model.variables if model.built else []


def _state(env):
  """Everything a bad call must leave as it is, as comparable values."""
  state = {}
  for name, model in env.models().items():
    for i, variable in enumerate(_variables(model)):
      state[f'{name} variable {i} ({variable.name})'] = np.array(variable.numpy(), copy=True)
  for name, pruner in env.pruners().items():
    for i, prunable in enumerate(pruner.iterate_prunables(env.plain)):
      state[f'{name} mask {i}'] = prunable.mask
      state[f'{name} pretrained {i}'] = prunable.pretrained_weights
    state[f'{name} cumulative_pruning_rate'] = pruner.cumulative_pruning_rate
  state['criterion registry'] = ltp_tfmot.criterion_names()
  for directory, dirs, files in os.walk(env.root):
    for name in dirs:
      state['dir ' + os.path.relpath(os.path.join(directory, name), env.root)] = True
    for name in files:
      path = os.path.join(directory, name)
      with open(path, 'rb') as f:
        state['file ' + os.path.relpath(path, env.root)] = f.read()
  return state


def _restore(env, state):
  for name, model in env.models().items():
    for i, variable in enumerate(_variables(model)):
      key = f'{name} variable {i} ({variable.name})'
      if key in state:
        variable.assign(state[key])


def _case(name, call, error, regex):
  return (name, call, error, regex)


# --- the matrix ----------------------------------------------------------------------------------------------------

SCHEDULE_CASES = [
    _case('schedule_rate_above_one', lambda e: ltp_tfmot.LotteryTicketSchedule(rate=1.5), ValueError,
          r'^rate must be in \(0, 1\), got 1\.5$'),
    _case('schedule_rate_one', lambda e: ltp_tfmot.LotteryTicketSchedule(rate=1), ValueError,
          r'rate must be in \(0, 1\), got 1$'),
    _case('schedule_rate_zero', lambda e: ltp_tfmot.LotteryTicketSchedule(rate=0.0), ValueError,
          r'rate must be in \(0, 1\), got 0\.0'),
    _case('schedule_rate_negative', lambda e: ltp_tfmot.LotteryTicketSchedule(rate=-0.2), ValueError,
          r'rate must be in \(0, 1\), got -0\.2'),
    _case('schedule_rate_nan', lambda e: ltp_tfmot.LotteryTicketSchedule(rate=float('nan')), ValueError,
          r'rate must be in \(0, 1\), got nan'),
    _case('schedule_rate_string', lambda e: ltp_tfmot.LotteryTicketSchedule(rate='0.2'), TypeError,
          r"rate must be a number in \(0, 1\), got '0\.2'"),
    _case('schedule_rate_bool', lambda e: ltp_tfmot.LotteryTicketSchedule(rate=True), TypeError,
          r'rate must be a number in \(0, 1\), got True'),
    _case('schedule_rate_none', lambda e: ltp_tfmot.LotteryTicketSchedule(rate=None), TypeError,
          r'rate must be a number in \(0, 1\), got None'),
    _case('schedule_rate_tensor', lambda e: ltp_tfmot.LotteryTicketSchedule(rate=tf.constant(0.2)), TypeError,
          r'rate must be a number in \(0, 1\), got <tf\.Tensor'),
    _case('schedule_round_steps_zero', lambda e: ltp_tfmot.LotteryTicketSchedule(0.2, round_steps=0, rounds=1),
          ValueError, r'round_steps must be an integer >= 1 \(or None for rounds run by hand\), got 0'),
    _case('schedule_rounds_float', lambda e: ltp_tfmot.LotteryTicketSchedule(0.2, round_steps=10, rounds=2.5),
          TypeError, r'rounds must be an integer >= 1 .*got 2\.5'),
    _case('schedule_rounds_string', lambda e: ltp_tfmot.LotteryTicketSchedule(0.2, round_steps=10, rounds='3'),
          TypeError, r"rounds must be an integer >= 1 .*got '3'"),
    _case('schedule_round_steps_without_rounds', lambda e: ltp_tfmot.LotteryTicketSchedule(0.2, round_steps=10),
          ValueError, r'round_steps and rounds must be given together .*got round_steps=10, rounds=None'),
    _case('one_shot_target_one', lambda e: ltp_tfmot.OneShotLotterySchedule(1.0, 10), ValueError,
          r'target_sparsity must be in \(0, 1\), got 1\.0'),
    _case('one_shot_target_none', lambda e: ltp_tfmot.OneShotLotterySchedule(None, 10), TypeError,
          r'target_sparsity must be a number in \(0, 1\), got None'),
    _case('one_shot_prune_step_zero', lambda e: ltp_tfmot.OneShotLotterySchedule(0.5, 0), ValueError,
          r'prune_step must be an integer >= 1, got 0'),
]

WRAPPER_CASES = [
    _case('wrapper_layer_none', lambda e: ltp_tfmot.PruneLotteryTicket(None), TypeError,
          r'layer must be a tf_keras layer, got builtins\.NoneType'),
    _case('wrapper_keras3_layer', lambda e: ltp_tfmot.PruneLotteryTicket(keras3.layers.Dense(2)), TypeError,
          r'layer must be a tf_keras layer, got keras\..*Dense'),
    _case('wrapper_unprunable_layer', lambda e: ltp_tfmot.PruneLotteryTicket(keras.layers.Dropout(0.1, name='drop')),
          ValueError, r"layer 'drop' \(Dropout\) has no prunable weight"),
    _case('wrapper_tfmot_schedule', lambda e: ltp_tfmot.PruneLotteryTicket(
        keras.layers.Dense(2), pruning_schedule=tfmot_schedule.ConstantSparsity(0.5, 0)), TypeError,
          r'pruning_schedule must be a ltp_tfmot\.LotteryTicketSchedule, got ConstantSparsity'),
    _case('wrapper_unknown_criterion', lambda e: ltp_tfmot.PruneLotteryTicket(keras.layers.Dense(2), criterion='big'),
          ValueError, r"criterion must be one of \[.*'large_final'.*\], got 'big'"),
    _case('wrapper_bad_scope', lambda e: ltp_tfmot.PruneLotteryTicket(keras.layers.Dense(2), scope='model'),
          ValueError, r"scope must be one of \['layer', 'global'\], got 'model'"),
    _case('wrapper_layer_rate_one', lambda e: ltp_tfmot.PruneLotteryTicket(keras.layers.Dense(2, name='d'),
                                                                           layer_rate=1.0),
          ValueError, r"layer_rates\['d'\] must be in \[0, 1\), got 1\.0"),
    _case('wrapper_bad_mask_0_action', lambda e: ltp_tfmot.PruneLotteryTicket(keras.layers.Dense(2),
                                                                              mask_0_action='keep'),
          ValueError, r"mask_0_action must be one of \['zero', 'freeze'\], got 'keep'"),
    _case('wrapper_bad_mask_1_action', lambda e: ltp_tfmot.PruneLotteryTicket(keras.layers.Dense(2),
                                                                              mask_1_action=None),
          ValueError, r'mask_1_action must be one of \[.*\], got None'),
    _case('wrapper_negative_rewind_step', lambda e: ltp_tfmot.PruneLotteryTicket(keras.layers.Dense(2),
                                                                                 rewind_step=-1),
          ValueError, r'rewind_step must be an integer >= 0 .*got -1'),
    _case('wrapper_float_seed', lambda e: ltp_tfmot.PruneLotteryTicket(keras.layers.Dense(2), seed=1.5),
          TypeError, r'seed must be an integer, got 1\.5'),
    _case('wrapper_m_by_n', lambda e: ltp_tfmot.PruneLotteryTicket(keras.layers.Dense(2), sparsity_m_by_n=(2, 4)),
          ValueError, r'sparsity_m_by_n=\(2, 4\) is not supported by lottery-ticket pruning.*block_size'),
    _case('wrapper_unit_group_not_a_string', lambda e: ltp_tfmot.PruneLotteryTicket(keras.layers.Dense(2),
                                                                                    unit_group=3),
          TypeError, r'^unit_group must be a string or None, got 3$'),
    _case('summaries_empty_log_dir', lambda e: ltp_tfmot.LotterySummaries(''), ValueError,
          r'log_dir must be a non-empty string'),
    _case('summaries_log_dir_not_a_string', lambda e: ltp_tfmot.LotterySummaries(None), TypeError,
          r'^log_dir must be a non-empty string, got None$'),
    _case('summaries_bad_update_freq', lambda e: ltp_tfmot.LotterySummaries('logs', update_freq=0), ValueError,
          r"update_freq must be 'epoch' or an integer >= 1 \(training steps\), got 0"),
    _case('summaries_update_freq_other_string', lambda e: ltp_tfmot.LotterySummaries('logs', update_freq='batch'),
          ValueError, r"^update_freq must be 'epoch' or an integer >= 1 \(training steps\), got 'batch'$"),
    _case('summaries_update_freq_float', lambda e: ltp_tfmot.LotterySummaries('logs', update_freq=2.5), TypeError,
          r"^update_freq must be 'epoch' or an integer >= 1 \(training steps\), got 2\.5$"),
]

PRUNE_CASES = [
    _case('prune_none', lambda e: ltp_tfmot.prune_lottery_ticket(None), TypeError,
          r'to_prune must be a tf_keras layer, a list of layers, or a Sequential or functional model, got NoneType'),
    _case('prune_string', lambda e: ltp_tfmot.prune_lottery_ticket('mlp'), TypeError,
          r'to_prune must be a tf_keras layer.*got str'),
    # A Keras 3 model goes to the Keras 3 front end, whose unit granularity has the Keras 2 rules.
    _case('prune_keras3_model_by_unit_in_blocks', lambda e: ltp_tfmot.prune_lottery_ticket(
        e.keras3, granularity='unit', block_size=(2, 1)), ValueError,
          r"granularity='unit' removes whole units, so block_size must be \(1, 1\)"),
    _case('prune_keras3_layer_in_list', lambda e: ltp_tfmot.prune_lottery_ticket(
        [keras.layers.Dense(2), keras3.layers.Dense(2)]), TypeError, r'to_prune\[1\] is a Keras 3 object'),
    _case('prune_subclassed_model', lambda e: ltp_tfmot.prune_lottery_ticket(e.subclassed), ValueError,
          r'to_prune is a subclassed model \(_Subclassed\).*Sequential or functional'),
    _case('prune_model_without_prunable_layer', lambda e: ltp_tfmot.prune_lottery_ticket(e.no_prunable), ValueError,
          r"model '.*' has no prunable layer"),
    _case('prune_unprunable_layer', lambda e: ltp_tfmot.prune_lottery_ticket(keras.layers.Dropout(0.5, name='drop')),
          ValueError, r"layer 'drop' \(Dropout\) has no prunable weight"),
    _case('prune_tfmot_schedule', lambda e: ltp_tfmot.prune_lottery_ticket(
        e.plain, tfmot_schedule.ConstantSparsity(0.5, 0)), TypeError,
          r'pruning_schedule must be a ltp_tfmot\.LotteryTicketSchedule, got ConstantSparsity'),
    _case('prune_schedule_float', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain, 0.2), TypeError,
          r'pruning_schedule must be a ltp_tfmot\.LotteryTicketSchedule, got float'),
    _case('prune_unknown_criterion', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain, criterion='largest'),
          ValueError, r"criterion must be one of \[.*\], got 'largest'; add your own with"),
    _case('prune_criterion_none', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain, criterion=None), ValueError,
          r'criterion must be one of \[.*\], got None'),
    _case('prune_bad_scope', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain, scope='Global'), ValueError,
          r"scope must be one of \['layer', 'global'\], got 'Global'"),
    _case('prune_bad_mask_0_action', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain, mask_0_action='rewind'),
          ValueError, r"mask_0_action must be one of \['zero', 'freeze'\], got 'rewind'"),
    _case('prune_bad_mask_1_action', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain, mask_1_action='zero'),
          ValueError, r"mask_1_action must be one of \['rewind', 'reinit', 'reshuffle', 'signed_constant'\], "
          r"got 'zero'"),
    _case('prune_negative_rewind_step', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain, rewind_step=-3), ValueError,
          r'rewind_step must be an integer >= 0 \(0 = the initial weights\), got -3'),
    _case('prune_float_rewind_step', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain, rewind_step=2.0), TypeError,
          r'rewind_step must be an integer >= 0 .*got 2\.0'),
    _case('prune_string_seed', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain, seed='0'), TypeError,
          r"seed must be an integer, got '0'"),
    _case('prune_block_size_zero', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain, block_size=(0, 1)), ValueError,
          r'block_size must be two integers >= 1, e\.g\. \(4, 1\), got \(0, 1\)'),
    _case('prune_block_size_three_dims', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain, block_size=(2, 2, 1)),
          ValueError, r'block_size must be two integers >= 1.*got \(2, 2, 1\)'),
    _case('prune_block_size_int', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain, block_size=4), ValueError,
          r'block_size must be two integers >= 1.*got 4'),
    _case('prune_block_size_floats', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain, block_size=(4.0, 1.0)),
          ValueError, r'block_size must be two integers >= 1.*got \(4\.0, 1\.0\)'),
    _case('prune_block_size_none', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain, block_size=None), ValueError,
          r'block_size must be two integers >= 1.*got None'),
    _case('prune_bad_block_pooling', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain, block_pooling_type='SUM'),
          ValueError, r"block_pooling_type must be one of \['AVG', 'MAX'\], got 'SUM'"),
    _case('prune_layer_rates_unknown_layer', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain,
                                                                                      layer_rates={'outptu': 0.1}),
          ValueError, r"layer_rates names \['outptu'\], which are not prunable layers here; "
          r"prunable layers: \['hidden1', 'hidden2', 'output'\]"),
    _case('prune_layer_rates_rate_one', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain, layer_rates={'output': 1}),
          ValueError, r"layer_rates\['output'\] must be in \[0, 1\), got 1"),
    _case('prune_layer_rates_negative', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain,
                                                                                 layer_rates={'output': -0.1}),
          ValueError, r"layer_rates\['output'\] must be in \[0, 1\), got -0\.1"),
    _case('prune_layer_rates_string_rate', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain,
                                                                                    layer_rates={'output': '0.1'}),
          TypeError, r"layer_rates\['output'\] must be a number in \[0, 1\), got '0\.1'"),
    _case('prune_layer_rates_list', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain, layer_rates=[('output', 0.1)]),
          TypeError, r'layer_rates must be a dict from layer name to rate, got list'),
    _case('prune_layer_rates_unprunable_layer', lambda e: ltp_tfmot.prune_lottery_ticket(
        [keras.layers.Dense(2, name='d'), keras.layers.Dropout(0.1, name='drop')], layer_rates={'drop': 0.1}),
          ValueError, r"layer_rates names \['drop'\], which are not prunable layers here; prunable layers: \['d'\]"),
]

CRITERIA_CASES = [
    _case('get_criterion_unknown', lambda e: ltp_tfmot.get_criterion('largest'), ValueError,
          r"criterion must be one of \[.*'large_final', .*\], got 'largest'"),
    _case('get_criterion_none', lambda e: ltp_tfmot.get_criterion(None), ValueError,
          r'criterion must be one of \[.*\], got None'),
    _case('get_criterion_number', lambda e: ltp_tfmot.get_criterion(3), ValueError,
          r'criterion must be one of \[.*\], got 3'),
    _case('register_criterion_name', lambda e: ltp_tfmot.register_criterion('large_final'), TypeError,
          r'criterion must be a ltp_tfmot\.Criterion, got str'),
    _case('register_criterion_none', lambda e: ltp_tfmot.register_criterion(None), TypeError,
          r'criterion must be a ltp_tfmot\.Criterion, got NoneType'),
    _case('register_criterion_taken_name', lambda e: ltp_tfmot.register_criterion(
        ltp_tfmot.Criterion('large_final', tf.abs)), ValueError,
          r"a criterion named 'large_final' is already registered; pass overwrite=True to replace it"),
    _case('criterion_empty_name', lambda e: ltp_tfmot.Criterion('', tf.abs), ValueError,
          r"name must be a non-empty string, got ''"),
    _case('criterion_name_none', lambda e: ltp_tfmot.Criterion(None, tf.abs), ValueError,
          r'name must be a non-empty string, got None'),
    _case('criterion_score_fn_none', lambda e: ltp_tfmot.Criterion('mine', None), TypeError,
          r'score_fn must be callable, got NoneType'),
    _case('criterion_score_fn_string', lambda e: ltp_tfmot.Criterion('mine', 'abs'), TypeError,
          r'score_fn must be callable, got str'),
]

ROUND_CASES = [
    _case('compute_masks_plain_model', lambda e: ltp_tfmot.compute_next_masks(e.plain), ValueError,
          r'model has no PruneLotteryTicket layer: wrap it with ltp_tfmot\.prune_lottery_ticket first'),
    _case('compute_masks_none', lambda e: ltp_tfmot.compute_next_masks(None), ValueError,
          r'model has no PruneLotteryTicket layer'),
    _case('compute_masks_empty_list', lambda e: ltp_tfmot.compute_next_masks([]), ValueError,
          r'model has no PruneLotteryTicket layer'),
    _case('compute_masks_unbuilt', lambda e: ltp_tfmot.compute_next_masks(e.unbuilt), ValueError,
          r"layers \['prune_lottery_ticket_hidden1', .*\] are not built yet: call the model on data"),
    _case('compute_masks_nan_weight', lambda e: ltp_tfmot.compute_next_masks(e.nan_wrapped), ValueError,
          r"hidden2/kernel:0 in layer 'hidden2' has NaN or inf values; pruning needs finite weights"),
    _case('compute_masks_needs_snapshot', lambda e: ltp_tfmot.compute_next_masks(e.unsnapped_large_init), ValueError,
          r"criterion 'large_init' ranks by the rewind snapshot, and none was taken yet: call "
          r'ltp_tfmot\.take_snapshot\(model\)'),
    _case('compute_masks_global_rates_differ', lambda e: ltp_tfmot.compute_next_masks(
        ltp_tfmot.lottery_wrappers(e.global_a) + ltp_tfmot.lottery_wrappers(e.global_b)), ValueError,
          r'global-scope layers must share one rate and one criterion, got rates \[0\.2, 0\.5\]'),
    _case('rewind_plain_model', lambda e: ltp_tfmot.rewind_weights(e.plain), ValueError,
          r'model has no PruneLotteryTicket layer'),
    _case('rewind_without_snapshot', lambda e: ltp_tfmot.rewind_weights(e.unsnapped), ValueError,
          r"layers \['hidden1', 'hidden2', 'output'\] have no rewind snapshot yet: call "
          r'ltp_tfmot\.take_snapshot\(model\)'),
    _case('rewind_unbuilt', lambda e: ltp_tfmot.rewind_weights(e.unbuilt), ValueError, r'are not built yet'),
    _case('round_plain_model', lambda e: ltp_tfmot.run_lottery_round(e.plain), ValueError,
          r'model has no PruneLotteryTicket layer'),
    _case('round_without_snapshot', lambda e: ltp_tfmot.run_lottery_round(e.unsnapped), ValueError,
          r'have no rewind snapshot yet'),
    _case('round_nan_weight', lambda e: ltp_tfmot.run_lottery_round(e.nan_wrapped), ValueError,
          r"in layer 'hidden2' has NaN or inf values"),
    _case('round_unbuilt', lambda e: ltp_tfmot.run_lottery_round(e.unbuilt), ValueError, r'are not built yet'),
    _case('snapshot_plain_model', lambda e: ltp_tfmot.take_snapshot(e.plain), ValueError,
          r'model has no PruneLotteryTicket layer'),
    _case('snapshot_unbuilt', lambda e: ltp_tfmot.take_snapshot(e.unbuilt), ValueError, r'are not built yet'),
    _case('apply_masks_plain_model', lambda e: ltp_tfmot.apply_masks(e.plain), ValueError,
          r'model has no PruneLotteryTicket layer'),
    _case('layer_sparsity_plain_model', lambda e: ltp_tfmot.layer_sparsity(e.plain), ValueError,
          r'model has no PruneLotteryTicket layer'),
]

CALLBACK_CASES = [
    _case('callback_plain_model', lambda e: _train_begin(ltp_tfmot.UpdateLotteryStep(), e.plain), ValueError,
          r'UpdateLotteryStep needs a model wrapped with ltp_tfmot\.prune_lottery_ticket'),
    _case('callback_subclassed_model', lambda e: _train_begin(ltp_tfmot.UpdateLotteryStep(), e.subclassed),
          ValueError, r'UpdateLotteryStep needs a model wrapped with ltp_tfmot\.prune_lottery_ticket'),
    _case('callback_schedules_differ', lambda e: _train_begin(ltp_tfmot.UpdateLotteryStep(), e.mixed_schedules),
          ValueError, r'all lottery wrappers of a model must share one schedule and rewind_step'),
    _case('callback_rewind_step_after_first_round', lambda e: _train_begin(ltp_tfmot.UpdateLotteryStep(),
                                                                           e.late_rewind),
          ValueError, r'rewind_step \(5\) must come before the end of the first round \(round_steps=2\)'),
    _case('callback_plain_model_in_fit', lambda e: _fit(e.plain, ltp_tfmot.UpdateLotteryStep()), ValueError,
          r'UpdateLotteryStep needs a model wrapped with ltp_tfmot\.prune_lottery_ticket'),
]

STRIP_CASES = [
    _case('strip_none', lambda e: ltp_tfmot.strip_pruning(None), ValueError,
          r'model must be a tf_keras Model, got NoneType'),
    _case('strip_keras3_layer', lambda e: ltp_tfmot.strip_pruning(keras3.layers.Dense(2)), TypeError,
          r'model must be a Keras 3 Model, got Dense'),
    _case('strip_a_layer', lambda e: ltp_tfmot.strip_pruning(ltp_tfmot.lottery_wrappers(e.wrapped)[0]), ValueError,
          r'model must be a tf_keras Model, got PruneLotteryTicket'),
    _case('strip_list', lambda e: ltp_tfmot.strip_pruning([e.wrapped]), ValueError,
          r'model must be a tf_keras Model, got list'),
]

CONFIG_CASES = [
    _case('run_config_empty_model', lambda e: experiment.RunConfig(model=''), ValueError,
          r"model must be a non-empty name of letters, digits.*got ''"),
    _case('run_config_model_with_slash', lambda e: experiment.RunConfig(model='../x'), ValueError,
          r"model must be a non-empty name.*got '\.\./x'"),
    _case('run_config_data_dict', lambda e: experiment.RunConfig(data={'name': 'mnist'}), TypeError,
          r"data must be a DataConfig \(arrays or a dataset go to run_experiment\(config, data=\.\.\.\)\), "
          r"got \{'name': 'mnist'\}"),
    _case('run_config_training_none', lambda e: experiment.RunConfig(training=None), TypeError,
          r'training must be a TrainingConfig, got None'),
    _case('run_config_negative_seed', lambda e: experiment.RunConfig(seed=-1), ValueError,
          r'seed must be an integer in \[0, 2147418111\], got -1'),
    _case('run_config_float_seed', lambda e: experiment.RunConfig(seed=1.0), TypeError,
          r'seed must be an integer in .*got 1\.0'),
    _case('run_config_no_replicates', lambda e: experiment.RunConfig(replicates=0), ValueError,
          r'replicates must be an integer >= 1, got 0'),
    _case('run_config_unknown_control', lambda e: experiment.RunConfig(controls=('reinit', 'shuffle')), ValueError,
          r"controls must be one of \['reinit', 'random_prune'[^]]*\], got 'shuffle'"),
    _case('run_config_repeated_control', lambda e: experiment.RunConfig(controls=('reinit', 'reinit')), ValueError,
          r"controls must not repeat a name, got \['reinit', 'reinit'\]"),
    _case('run_config_controls_number', lambda e: experiment.RunConfig(controls=3), ValueError,
          r'controls must be a list of branch names from .*got 3'),
    _case('run_config_control_level_zero', lambda e: experiment.RunConfig(controls=('reinit',), control_levels=(0,)),
          ValueError, r'control_levels must lie in 1\.\.5 \(pruning\.levels\), got \[0\]'),
    _case('run_config_control_levels_strings', lambda e: experiment.RunConfig(control_levels=('1',)), ValueError,
          r"control_levels must be a list of integers .*got \('1',\)"),
    _case('run_config_from_dict_unknown_key', lambda e: experiment.RunConfig.from_dict({'levels': 3}), ValueError,
          r"unknown settings \['levels'\]; known: \["),
    _case('run_config_from_dict_unknown_nested_key', lambda e: experiment.RunConfig.from_dict(
        {'pruning': {'rates': 0.2}}), ValueError, r"unknown settings \['pruning\.rates'\]"),
    _case('run_config_from_dict_list', lambda e: experiment.RunConfig.from_dict({'pruning': [0.2]}), ValueError,
          r'pruning must be a dict of settings, got \[0\.2\]'),
    _case('data_config_bad_name', lambda e: experiment.DataConfig(name='my data'), ValueError,
          r"data\.name must be a non-empty name.*got 'my data'"),
    _case('data_config_bad_source', lambda e: experiment.DataConfig(source='web'), ValueError,
          r"data\.source must be one of \['auto', 'keras', 'embedded'\], got 'web'"),
    _case('data_config_validation_split_one', lambda e: experiment.DataConfig(validation_split=1.0), ValueError,
          r'data\.validation_split must be in \(0, 1\), got 1\.0'),
    _case('data_config_train_size_one', lambda e: experiment.DataConfig(train_size=1), ValueError,
          r'data\.train_size must be an integer >= 2 \(or None\), got 1'),
    _case('data_config_test_size_float', lambda e: experiment.DataConfig(test_size=10.0), TypeError,
          r'data\.test_size must be an integer >= 1 \(or None\), got 10\.0'),
    _case('training_config_bad_optimizer', lambda e: experiment.TrainingConfig(optimizer='rmsprop'), ValueError,
          r"training\.optimizer must be one of \['adam', 'sgd'\], got 'rmsprop'"),
    _case('training_config_zero_learning_rate', lambda e: experiment.TrainingConfig(learning_rate=0), ValueError,
          r'training\.learning_rate must be a finite number > 0, got 0'),
    _case('training_config_nan_learning_rate', lambda e: experiment.TrainingConfig(learning_rate=float('nan')),
          ValueError, r'training\.learning_rate must be a finite number > 0, got nan'),
    _case('training_config_momentum_with_adam', lambda e: experiment.TrainingConfig(momentum=0.9), ValueError,
          r"training\.momentum applies to optimizer 'sgd' only, got momentum=0\.9 with optimizer 'adam'"),
    _case('training_config_momentum_one', lambda e: experiment.TrainingConfig(optimizer='sgd', momentum=1.0),
          ValueError, r'training\.momentum must be in \[0, 1\), got 1\.0'),
    _case('training_config_zero_batch', lambda e: experiment.TrainingConfig(batch_size=0), ValueError,
          r'training\.batch_size must be an integer >= 1, got 0'),
    _case('training_config_bool_epochs', lambda e: experiment.TrainingConfig(epochs=True), TypeError,
          r'training\.epochs must be an integer >= 1, got True'),
    _case('training_config_zero_eval_every', lambda e: experiment.TrainingConfig(eval_every=0), ValueError,
          r'training\.eval_every must be an integer >= 1, got 0'),
    _case('pruning_config_unknown_criterion', lambda e: experiment.PruningConfig(criterion='largest'), ValueError,
          r"pruning\.criterion must be one of \[.*\], got 'largest'"),
    _case('pruning_config_bad_scope', lambda e: experiment.PruningConfig(scope='all'), ValueError,
          r"pruning\.scope must be one of \['layer', 'global'\], got 'all'"),
    _case('pruning_config_rate_zero', lambda e: experiment.PruningConfig(rate=0), ValueError,
          r'pruning\.rate must be in \(0, 1\), got 0'),
    _case('pruning_config_layer_rates_list', lambda e: experiment.PruningConfig(layer_rates=[('output', 0.1)]),
          TypeError, r'pruning\.layer_rates must be a dict from layer name to a rate in \[0, 1\)'),
    _case('pruning_config_layer_rate_one', lambda e: experiment.PruningConfig(layer_rates={'output': 1.0}),
          ValueError, r"pruning\.layer_rates\['output'\] must be in \[0, 1\), got 1\.0"),
    _case('pruning_config_layer_rates_number_key', lambda e: experiment.PruningConfig(layer_rates={3: 0.1}),
          ValueError, r'pruning\.layer_rates keys must be layer names, got 3'),
    _case('pruning_config_negative_rewind_step', lambda e: experiment.PruningConfig(rewind_step=-1), ValueError,
          r'pruning\.rewind_step must be an integer >= 0, got -1'),
    _case('pruning_config_bad_mask_0_action', lambda e: experiment.PruningConfig(mask_0_action='drop'), ValueError,
          r"pruning\.mask_0_action must be one of \['zero', 'freeze'\], got 'drop'"),
    _case('pruning_config_bad_mask_1_action', lambda e: experiment.PruningConfig(mask_1_action='reset'), ValueError,
          r"pruning\.mask_1_action must be one of \[.*\], got 'reset'"),
    _case('pruning_config_dwr_int', lambda e: experiment.PruningConfig(dynamic_weight_rescaling=1), TypeError,
          r'pruning\.dynamic_weight_rescaling must be True or False, got 1'),
    _case('pruning_config_negative_levels', lambda e: experiment.PruningConfig(levels=-1), ValueError,
          r'pruning\.levels must be an integer >= 0, got -1'),
]

RUNNER_CASES = [
    _case('experiment_config_dict', lambda e: experiment.LotteryExperiment({'model': 'lenet_300_100'}, e.runs),
          TypeError, r'config must be a RunConfig, got dict'),
    _case('experiment_config_none', lambda e: experiment.LotteryExperiment(None, e.runs), TypeError,
          r'config must be a RunConfig, got NoneType'),
    _case('experiment_no_directory', lambda e: experiment.LotteryExperiment(experiment.RunConfig()), ValueError,
          r'give exactly one of out_dir .* and run_dir'),
    _case('experiment_both_directories', lambda e: experiment.LotteryExperiment(
        experiment.RunConfig(), e.runs, run_dir=e.other_run), ValueError, r'give exactly one of out_dir'),
    _case('experiment_model_fn_not_callable', lambda e: experiment.LotteryExperiment(
        e.tiny_config(), e.runs, model_fn='mlp'), TypeError,
          r"model_fn must be callable \(input_shape, num_classes, seed\) -> model, got 'mlp'"),
    _case('experiment_unknown_model', lambda e: experiment.LotteryExperiment(experiment.RunConfig(model='vgg99'),
                                                                             e.runs),
          ValueError, r"model must be one of \[.*'lenet_300_100'.*\], got 'vgg99'; or pass model_fn= "),
    _case('run_dir_holds_another_run', lambda e: e.run_tiny(run_dir=e.other_run), ValueError,
          r'run directory .*other_run holds a run with other settings, so it was left as it is: .*seed is 5 there '
          r'and 0 here'),
    _case('run_dir_not_a_run', lambda e: e.run_tiny(run_dir=e.foreign), ValueError,
          r'foreign is not empty and has no config\.json: it is not an ltp_tfmot run directory'),
    _case('run_batch_larger_than_data', lambda e: e.run_tiny(e.tiny_config(
        training=experiment.TrainingConfig(batch_size=1000, epochs=1))), ValueError,
          r'training\.batch_size \(1000\) is larger than the \d+ training examples'),
    _case('run_rewind_step_beyond_level', lambda e: e.run_tiny(e.tiny_config(rewind_step=10**6)), ValueError,
          r'pruning\.rewind_step \(1000000\) must be smaller than the iterations of a level'),
    _case('run_layer_rates_unknown_layer', lambda e: e.run_tiny(e.tiny_config(layer_rates={'logits': 0.1})),
          ValueError, r"layer_rates \['logits'\] match no prunable layer; the prunable layers are \['hidden1', "),
    _case('run_model_fn_keras3', lambda e: e.run_tiny(model_fn=lambda shape, classes, seed: _keras3_model()),
          TypeError, r'the model built by model_fn is a Keras 3 object .*import tf_keras as keras'),
    _case('run_model_fn_wrong_outputs', lambda e: e.run_tiny(
        model_fn=lambda shape, classes, seed: _mlp(sizes=(6, 3))), ValueError,
          r'the model outputs 3 values per example, but the data have 4 classes'),
    _case('run_model_fn_subclassed', lambda e: e.run_tiny(e.tiny_config(layer_rates={}),
                                                          model_fn=lambda shape, classes, seed: _Subclassed()),
          ValueError, r'to_prune is a subclassed model'),
    _case('run_model_fn_returns_layer', lambda e: e.run_tiny(
        model_fn=lambda shape, classes, seed: keras.layers.Dense(4)), ValueError,
          r'model_fn must return a tf_keras Model, got Dense'),
    _case('run_data_two_arrays', lambda e: e.run_tiny(data=(X, Y)), ValueError,
          r'data must be \(x_train, y_train, x_test, y_test\) arrays or a ltp_tfmot\.datasets\.Dataset, got tuple'),
    _case('run_data_float_labels', lambda e: e.run_tiny(data=(X, Y.astype(np.float32), X_TEST, Y_TEST)), ValueError,
          r'y_train must hold class indices \(integers >= 0\), got dtype float32'),
    _case('run_data_shapes_differ', lambda e: e.run_tiny(data=(X, Y, X_TEST[:, :4], Y_TEST)), ValueError,
          r'x_train and x_test must have the same example shape, got \(8,\) and \(4,\)'),
    _case('run_data_labels_too_few', lambda e: e.run_tiny(data=(X, Y[:-1], X_TEST, Y_TEST)), ValueError,
          r'y_train must hold one integer class per example of x_train \(40\), got shape \(39,\)'),
]

EXPORT_CASES = [
    _case('export_none', lambda e: ltp_tfmot.export_tflite(None, os.path.join(e.exports, 'm.tflite')), ValueError,
          r'model must be a tf_keras Model, got NoneType'),
    _case('export_unbuilt_keras3_model', lambda e: ltp_tfmot.export_tflite(
        keras3.Sequential([keras3.layers.Dense(2)]), os.path.join(e.exports, 'm.tflite')),
          ValueError, r"model '.*' is not built: call it on data \(or model\.build\) before exporting"),
    _case('export_unbuilt', lambda e: ltp_tfmot.export_tflite(e.unbuilt, os.path.join(e.exports, 'm.tflite')),
          ValueError, r"model '.*' is not built: call it on data \(or model\.build\) before exporting"),
    _case('export_subclassed', lambda e: ltp_tfmot.export_tflite(e.subclassed, os.path.join(e.exports, 'm.tflite')),
          ValueError, r"model 'subclassed' has no symbolic inputs \(a subclassed model\?\)"),
    _case('export_unknown_quantization', lambda e: ltp_tfmot.export_tflite(
        e.wrapped, os.path.join(e.exports, 'm.tflite'), quantization='int4'), ValueError,
          r"quantization must be one of \[None, 'float16', 'dynamic', 'int8'\], got 'int4'"),
    _case('export_int8_without_data', lambda e: ltp_tfmot.export_tflite(
        e.wrapped, os.path.join(e.exports, 'm.tflite'), quantization='int8'), ValueError,
          r"quantization='int8' needs representative_data"),
    _case('export_data_without_int8', lambda e: ltp_tfmot.export_tflite(
        e.wrapped, os.path.join(e.exports, 'm.tflite'), representative_data=X), ValueError,
          r"representative_data is only used with quantization='int8', got quantization=None"),
    _case('export_missing_directory', lambda e: ltp_tfmot.export_tflite(
        e.wrapped, os.path.join(e.exports, 'missing', 'm.tflite')), ValueError,
          r"directory '.*missing' of path does not exist"),
    _case('export_plain_bad_sample_shape', lambda e: ltp_tfmot.export_tflite(
        e.plain, os.path.join(e.exports, 'm.tflite'), sample_inputs=np.zeros((2, 5))), ValueError,
          r"sample_inputs for input '.*' has shape \(2, 5\); the model expects \(n, \*\(8,\)\)"),
    _case('export_plain_no_samples', lambda e: ltp_tfmot.export_tflite(
        e.plain, os.path.join(e.exports, 'm.tflite'), sample_inputs=np.zeros((0, 8))), ValueError,
          r'sample_inputs must have the same number \(>= 1\) of samples for every input, got \[0\]'),
    _case('export_plain_sample_dict_missing_input', lambda e: ltp_tfmot.export_tflite(
        e.plain, os.path.join(e.exports, 'm.tflite'), sample_inputs={'x': X}), ValueError,
          r'sample_inputs has no entry for model inputs \['),
    _case('export_plain_bad_representative_shape', lambda e: ltp_tfmot.export_tflite(
        e.plain, os.path.join(e.exports, 'm.tflite'), quantization='int8', representative_data=np.zeros((4, 3))),
          ValueError, r"representative_data for input '.*' has shape \(4, 3\)"),
]

TICKET_CASES = [
    _case('save_ticket_without_snapshot', lambda e: ltp_tfmot.save_ticket(e.unsnapped, os.path.join(e.tickets, 'n')),
          ValueError, r"layers \['hidden1', 'hidden2', 'output'\] have no rewind snapshot: call "
          r'ltp_tfmot\.take_snapshot\(model\)'),
    _case('save_ticket_plain_model', lambda e: ltp_tfmot.save_ticket(e.plain, os.path.join(e.tickets, 'n.npz')),
          ValueError, r'model has no PruneLotteryTicket layer'),
    # A Keras 3 model goes to the Keras 3 front end's tickets, which need its wrappers too.
    _case('save_ticket_keras3_model', lambda e: ltp_tfmot.save_ticket(e.keras3, os.path.join(e.tickets, 'n.npz')),
          ValueError, r'model has no PruneLotteryTicket layer: wrap it with ltp_tfmot.prune_lottery_ticket first'),
    _case('save_ticket_unbuilt', lambda e: ltp_tfmot.save_ticket(e.unbuilt, os.path.join(e.tickets, 'n.npz')),
          ValueError, r'are not built yet'),
    _case('save_ticket_config_list', lambda e: ltp_tfmot.save_ticket(e.wrapped, os.path.join(e.tickets, 'n.npz'),
                                                                     config=[1, 2]),
          ValueError, r'config must be a dict, got list'),
    _case('save_ticket_config_not_json', lambda e: ltp_tfmot.save_ticket(
        e.wrapped, os.path.join(e.tickets, 'n.npz'), config={'model': e.plain}), ValueError,
          r'config must be JSON-serialisable: .*Sequential'),
    _case('save_ticket_missing_directory', lambda e: ltp_tfmot.save_ticket(
        e.wrapped, os.path.join(e.tickets, 'missing', 'n.npz')), ValueError,
          r"directory '.*missing' of path does not exist"),
    _case('load_ticket_other_shapes', lambda e: ltp_tfmot.load_ticket(e.other_sizes, e.ticket), ValueError,
          r"the ticket '.*ticket\.npz' does not fit this model: weight 'kernel' of layer 'hidden2' has shape "
          r'\[16, 12\] in the ticket and \[16, 10\] in the model'),
    _case('load_ticket_fewer_layers', lambda e: ltp_tfmot.load_ticket(e.mixed_schedules, e.ticket), ValueError,
          r'does not fit this model: '),
    _case('load_ticket_truncated', lambda e: ltp_tfmot.load_ticket(e.wrapped, e.truncated), ltp_tfmot.TicketFileError,
          r"'.*truncated\.npz' is not a readable ticket file \(truncated or corrupt\?\)"),
    _case('load_ticket_foreign_npz', lambda e: ltp_tfmot.load_ticket(e.wrapped, e.foreign_npz),
          ltp_tfmot.TicketFileError, r"'.*foreign\.npz' is not a valid ticket file: it has no metadata entry"),
    _case('load_ticket_text_file', lambda e: ltp_tfmot.load_ticket(e.wrapped, e.text_file), ltp_tfmot.TicketFileError,
          r'is not a readable ticket file'),
    _case('load_ticket_missing_file', lambda e: ltp_tfmot.load_ticket(e.wrapped, os.path.join(e.tickets, 'no.npz')),
          FileNotFoundError, r"no ticket file at '.*no\.npz'"),
    _case('load_ticket_directory', lambda e: ltp_tfmot.load_ticket(e.wrapped, e.tickets), FileNotFoundError,
          r'no ticket file at'),
    _case('load_ticket_plain_model', lambda e: ltp_tfmot.load_ticket(e.plain, e.ticket), ValueError,
          r'model has no PruneLotteryTicket layer'),
    _case('load_ticket_unbuilt', lambda e: ltp_tfmot.load_ticket(e.unbuilt, e.ticket), ValueError,
          r'are not built yet'),
    _case('load_ticket_keras3_model', lambda e: ltp_tfmot.load_ticket(e.keras3, e.ticket), ValueError,
          r'model has no PruneLotteryTicket layer: wrap it with ltp_tfmot.prune_lottery_ticket first'),
    _case('read_ticket_truncated', lambda e: ltp_tfmot.read_ticket(e.truncated), ltp_tfmot.TicketFileError,
          r'is not a readable ticket file \(truncated or corrupt\?\)'),
]

COMPAT_CASES = [
    _case('pruner_none', lambda e: ltp_tfmot.LotteryTicketPruner(None), TypeError,
          r'initial_model must be a tf_keras Model, got builtins\.NoneType'),
    _case('pruner_keras3_model', lambda e: ltp_tfmot.LotteryTicketPruner(e.keras3), TypeError,
          r'initial_model must be a tf_keras Model, got keras\..*\(a Keras 3 model: build it with '
          r'`import tf_keras as keras` instead\)'),
    _case('pruner_unbuilt', lambda e: ltp_tfmot.LotteryTicketPruner(e.unbuilt_plain), ValueError,
          r"initial_model \('.*'\) is not built yet"),
    _case('pruner_wrapped_model', lambda e: ltp_tfmot.LotteryTicketPruner(e.wrapped), ValueError,
          r'initial_model has layers wrapped for pruning \(\[.*\]\); LotteryTicketPruner works on plain models'),
    _case('pruner_no_prunable_layer', lambda e: ltp_tfmot.LotteryTicketPruner(e.no_prunable), ValueError,
          r"initial_model \('.*'\) has no prunable layer; prunable are \["),
    _case('pruner_float_seed', lambda e: ltp_tfmot.LotteryTicketPruner(e.plain, seed=0.5), ValueError,
          r'seed must be an integer or None, got 0\.5'),
    _case('calc_percentage_above_one', lambda e: e.pruner.calc_prune_mask(e.plain, 1.5, 'smallest_weights'),
          ValueError, r'prune_percentage must be a fraction of the remaining weights strictly between 0\.0 and 1\.0 '
          r'.*got 1\.5'),
    _case('calc_percentage_zero', lambda e: e.pruner.calc_prune_mask(e.plain, 0, 'smallest_weights'), ValueError,
          r'prune_percentage must be .*got 0$'),
    _case('calc_percentage_string', lambda e: e.pruner.calc_prune_mask(e.plain, '0.2', 'smallest_weights'),
          ValueError, r"prune_percentage must be .*got '0\.2'"),
    _case('calc_percentage_nan', lambda e: e.pruner.calc_prune_mask(e.plain, float('nan'), 'random'), ValueError,
          r'prune_percentage must be .*got nan'),
    _case('calc_unknown_strategy', lambda e: e.pruner.calc_prune_mask(e.plain, 0.2, 'smallest'), ValueError,
          r"prune_strategy must be one of \[.*'smallest_weights'.*\], got 'smallest'"),
    _case('calc_strategy_none', lambda e: e.pruner.calc_prune_mask(e.plain, 0.2, None), ValueError,
          r'prune_strategy must be one of \[.*\], got None'),
    _case('calc_global_suffix_alone', lambda e: e.pruner.calc_prune_mask(e.plain, 0.2, '_global'), ValueError,
          r"prune_strategy must be one of \[.*\], got '_global'"),
    _case('calc_large_final_without_pretrained', lambda e: e.pruner.calc_prune_mask(e.plain, 0.2, 'large_final'),
          ValueError, r"prune_strategy='large_final' ranks the pretrained weights, and none were set: call "
          r'pruner\.set_pretrained_weights\(trained_model\) first'),
    _case('calc_other_architecture', lambda e: e.pruner.calc_prune_mask(e.other_plain, 0.2, 'smallest_weights'),
          ValueError, r"model layer 1 \('hidden2'\) has output shape \(None, 10\), but layer 1 of the initial model "
          r"has \(None, 12\): the pruner only works on models with the initial model's architecture"),
    _case('calc_keras3_model', lambda e: e.pruner.calc_prune_mask(e.keras3, 0.2, 'smallest_weights'), TypeError,
          r'model must be a tf_keras Model, got keras\..*\(a Keras 3 model'),
    _case('calc_nan_current_weights', lambda e: e.pruner.calc_prune_mask(e.nan_plain, 0.2, 'smallest_weights'),
          ValueError, r"the model weight hidden2/kernel:0 of layer 'hidden2' has NaN or inf values"),
    _case('calc_nan_pretrained_weights', lambda e: e.nan_pruner.calc_prune_mask(e.plain, 0.2, 'large_final'),
          ValueError, r"the pretrained weight hidden2/kernel:0 of layer 'hidden2' has NaN or inf values"),
    _case('set_pretrained_other_architecture', lambda e: e.pruner.set_pretrained_weights(e.other_plain), ValueError,
          r'pretrained_model layer 1 .* has output shape \(None, 10\), but layer 1 of the initial model has'),
    _case('set_pretrained_none', lambda e: e.pruner.set_pretrained_weights(None), TypeError,
          r'pretrained_model must be a tf_keras Model, got builtins\.NoneType'),
    _case('apply_pruning_other_architecture', lambda e: e.pruner.apply_pruning(e.other_plain), ValueError,
          r"model layer 1 .* has output shape \(None, 10\)"),
    _case('apply_dwr_other_architecture', lambda e: e.pruner.apply_dwr(e.other_plain), ValueError,
          r"model layer 1 .* has output shape \(None, 10\)"),
    _case('iterate_prunables_other_architecture', lambda e: e.pruner.iterate_prunables(e.other_plain), ValueError,
          r"model layer 1 .* has output shape \(None, 10\)"),
    _case('pruner_callback_without_pruner', lambda e: ltp_tfmot.PrunerCallback('pruner'), TypeError,
          r'pruner must be a LotteryTicketPruner, got str'),
    _case('pruner_callback_other_architecture', lambda e: _train_begin(ltp_tfmot.PrunerCallback(e.pruner),
                                                                       e.other_plain), ValueError,
          r"model layer 1 .* has output shape \(None, 10\)"),
    _case('pruner_callback_other_architecture_in_fit', lambda e: _fit(e.other_plain,
                                                                      ltp_tfmot.PrunerCallback(e.pruner)),
          ValueError, r"model layer 1 .* has output shape \(None, 10\)"),
]


# Cases that once failed (library bugs found by this matrix), kept as regression cases.
REGRESSION_CASES = [
    # run_lottery_round prunes and rewinds, then fails on the optimizer: the model is changed.
    _case('round_optimizer_string', lambda e: ltp_tfmot.run_lottery_round(e.wrapped, optimizer='adam'), TypeError,
          r'optimizer must be a tf_keras optimizer.*got str'),
    _case('reset_optimizer_string', lambda e: ltp_tfmot.reset_optimizer('adam'), TypeError,
          r'optimizer must be a tf_keras optimizer.*got str'),
    # take_snapshot does not check `step`: -1 silently means "no snapshot", a float/str fails after the
    # snapshot variables were overwritten.
    _case('snapshot_negative_step', lambda e: ltp_tfmot.take_snapshot(e.wrapped, step=-1), ValueError,
          r'step must be an integer >= 0, got -1'),
    _case('snapshot_string_step', lambda e: ltp_tfmot.take_snapshot(e.wrapped, step='10'), TypeError,
          r"step must be an integer >= 0, got '10'"),
    _case('snapshot_float_step', lambda e: ltp_tfmot.take_snapshot(e.wrapped, step=2.5), TypeError,
          r'step must be an integer >= 0, got 2\.5'),
    # export_tflite strips (so masks) a wrapped model in place before it checks sample_inputs/representative_data.
    _case('export_wrapped_bad_sample_shape', lambda e: ltp_tfmot.export_tflite(
        e.wrapped, os.path.join(e.exports, 'm.tflite'), sample_inputs=np.zeros((2, 5))), ValueError,
          r"sample_inputs for input '.*' has shape \(2, 5\)"),
    _case('export_wrapped_bad_representative_shape', lambda e: ltp_tfmot.export_tflite(
        e.wrapped, os.path.join(e.exports, 'm.tflite'), quantization='int8', representative_data=np.zeros((4, 3))),
          ValueError, r"representative_data for input '.*' has shape \(4, 3\)"),
    # dynamic_weight_rescaling is passed through bool(): 'no' (or 'False') turns rescaling on.
    _case('prune_dwr_string', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain, dynamic_weight_rescaling='no'),
          TypeError, r"dynamic_weight_rescaling must be True or False, got 'no'"),
    # rewind_step >= round_steps is only refused when fit begins, though prune_lottery_ticket has both.
    _case('prune_rewind_step_after_first_round', lambda e: ltp_tfmot.prune_lottery_ticket(
        e.plain, ltp_tfmot.LotteryTicketSchedule(0.2, round_steps=10, rounds=2), rewind_step=10), ValueError,
          r'rewind_step \(10\) must come before the end of the first round \(round_steps=10\)'),
    # An unhashable criterion escapes as "unhashable type: 'list'", which names no argument.
    _case('prune_criterion_list', lambda e: ltp_tfmot.prune_lottery_ticket(e.plain, criterion=['large_final']),
          ValueError, r"criterion must be one of \[.*\], got \['large_final'\]"),
    _case('get_criterion_list', lambda e: ltp_tfmot.get_criterion(['large_final']), ValueError,
          r"criterion must be one of \[.*\], got \['large_final'\]"),
    # The round functions take a Keras 3 model to the Keras 3 front end, which needs its wrappers too.
    _case('compute_masks_keras3_model', lambda e: ltp_tfmot.compute_next_masks(e.keras3), ValueError,
          r'model has no PruneLotteryTicket layer: wrap it with ltp_tfmot.prune_lottery_ticket first'),
    _case('run_round_keras3_model', lambda e: ltp_tfmot.run_lottery_round(e.keras3), ValueError,
          r'model has no PruneLotteryTicket layer: wrap it with ltp_tfmot.prune_lottery_ticket first'),
    _case('take_snapshot_keras3_model', lambda e: ltp_tfmot.take_snapshot(e.keras3), ValueError,
          r'model has no PruneLotteryTicket layer: wrap it with ltp_tfmot.prune_lottery_ticket first'),
    # prune_lottery_ticket calls an already wrapped model one "with no prunable layer".
    _case('prune_wrapped_model', lambda e: ltp_tfmot.prune_lottery_ticket(e.wrapped), ValueError,
          r'already wrapped'),
    # strip_pruning passes a subclassed model to tfmot, whose clone_model error names no argument; with lottery
    # wrappers inside (the pattern prune_lottery_ticket advises), the masks are applied before that error.
    _case('strip_subclassed_model', lambda e: ltp_tfmot.strip_pruning(e.subclassed), ValueError,
          r'model is a subclassed model'),
    _case('strip_subclassed_wrapped_model', lambda e: ltp_tfmot.strip_pruning(e.subclassed_wrapped), ValueError,
          r'model is a subclassed model'),
    # OneShotLotterySchedule(0.5, None) complains about round_steps and rounds, which the caller never passed.
    _case('one_shot_prune_step_none', lambda e: ltp_tfmot.OneShotLotterySchedule(0.5, None), ValueError,
          r'prune_step must be an integer >= 1.*got None'),
    # A path of the wrong type fails in os.fspath with a message that names no argument.
    _case('save_ticket_path_none', lambda e: ltp_tfmot.save_ticket(e.wrapped, None), TypeError,
          r'path must be a str or os\.PathLike.*got NoneType'),
    _case('load_ticket_path_none', lambda e: ltp_tfmot.load_ticket(e.wrapped, None), TypeError,
          r'path must be a str or os\.PathLike.*got NoneType'),
    _case('export_path_none', lambda e: ltp_tfmot.export_tflite(e.plain, None), TypeError,
          r'path must be a str or os\.PathLike.*got NoneType'),
]

CASES = (SCHEDULE_CASES + WRAPPER_CASES + PRUNE_CASES + CRITERIA_CASES + ROUND_CASES + CALLBACK_CASES + STRIP_CASES
         + CONFIG_CASES + RUNNER_CASES + EXPORT_CASES + TICKET_CASES + COMPAT_CASES + REGRESSION_CASES)


def _train_begin(callback, model):
  callback.set_model(model)
  callback.on_train_begin()


def _fit(model, callback):
  model.compile(optimizer=keras.optimizers.SGD(0.0), loss='mse')
  model.fit(X[:4], np.zeros((4, int(model.output_shape[-1])), np.float32), epochs=1, verbose=0, callbacks=[callback])


def _cli(*args):
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    status = cli.main(['ltp-tfmot'] + list(args))
  return status, err.getvalue()


# (case name, arguments (a function of the environment), exit status, regex of stderr)
CLI_CASES = [
    ('cli_no_command', lambda e: [], 2, r'the first argument must be a command, one of \[.*\]; got none'),
    ('cli_unknown_command', lambda e: ['train'], 2, r"the first argument must be a command, .*got 'train'"),
    ('cli_unknown_flag', lambda e: ['run', '--epoch=3'], 2, r'Unknown command line flag .epoch.'),
    ('cli_unknown_model', lambda e: ['run', '--model=vgg99'], 2, r'--model.*vgg99'),
    ('cli_rate_not_a_number', lambda e: ['run', '--rate=abc'], 2, r'--rate.*abc'),
    ('cli_rate_above_one', lambda e: ['run', '--rate=1.5', f'--out={e.runs}'], 2,
     r'ltp-tfmot run: pruning\.rate must be in \(0, 1\), got 1\.5'),
    ('cli_unknown_criterion', lambda e: ['run', '--criterion=largest', f'--out={e.runs}'], 2,
     r"pruning\.criterion must be one of \[.*\], got 'largest'"),
    ('cli_bad_layer_rates', lambda e: ['run', '--layer_rates=output', f'--out={e.runs}'], 2,
     r"--layer_rates entries must be name:rate, got 'output'"),
    ('cli_layer_rate_one', lambda e: ['run', '--layer_rates=output:1', f'--out={e.runs}'], 2,
     r"pruning\.layer_rates\['output'\] must be in \[0, 1\), got 1\.0"),
    ('cli_bad_control_levels', lambda e: ['run', '--controls=reinit', '--control_levels=a', f'--out={e.runs}'], 2,
     r"--control_levels must be comma-separated integers, got 'a'"),
    ('cli_control_level_beyond_levels', lambda e: ['run', '--levels=1', '--controls=reinit', '--control_levels=3',
                                                   f'--out={e.runs}'], 2,
     r'control_levels must lie in 1\.\.1 \(pruning\.levels\), got \[3\]'),
    ('cli_unknown_control', lambda e: ['run', '--controls=shuffle', f'--out={e.runs}'], 2,
     r"controls must be one of \['reinit', 'random_prune'[^]]*\], got 'shuffle'"),
    ('cli_momentum_with_adam', lambda e: ['run', '--momentum=0.9', f'--out={e.runs}'], 2,
     r"training\.momentum applies to optimizer 'sgd' only"),
    ('cli_run_positional_argument', lambda e: ['run', e.runs], 2, r'run takes no positional arguments, got \['),
    ('cli_run_into_foreign_directory', lambda e: [
        'run', f'--run_dir={e.foreign}', '--dataset_source=embedded', '--train_size=100', '--test_size=20',
        '--batch_size=10', '--epochs=1', '--levels=1', '--notensorboard'], 1,
     r'ltp-tfmot run: error: .*foreign is not empty and has no config\.json'),
    ('cli_run_into_another_run', lambda e: [
        'run', f'--run_dir={e.other_run}', '--dataset_source=embedded', '--train_size=100', '--test_size=20',
        '--batch_size=10', '--epochs=1', '--levels=1', '--notensorboard'], 1,
     r'ltp-tfmot run: error: run directory .*other_run holds a run with other settings'),
    ('cli_report_without_directory', lambda e: ['report'], 2,
     r'ltp-tfmot report: report needs at least one run directory'),
    ('cli_report_missing_directory', lambda e: ['report', os.path.join(e.runs, 'missing')], 1,
     r'ltp-tfmot report: error: .*missing does not exist'),
    ('cli_report_foreign_directory', lambda e: ['report', e.foreign], 1,
     r'foreign is neither a run directory \(no config\.json\) nor a folder of run directories'),
    ('cli_export_without_directory', lambda e: ['export', f'--out={e.exports}/m.tflite'], 2,
     r'ltp-tfmot export: export takes one run directory, got none'),
    ('cli_export_not_tflite', lambda e: ['export', e.other_run, f'--out={e.exports}/m.h5'], 2,
     r"--out must name the \.tflite file to write, got '.*m\.h5'"),
    ('cli_export_not_a_run', lambda e: ['export', e.foreign, f'--out={e.exports}/m.tflite'], 1,
     r"ltp-tfmot export: error: '.*foreign' is not a run directory \(it has no config\.json\)"),
    ('cli_export_unfinished_level', lambda e: ['export', e.other_run, '--level=3', f'--out={e.exports}/m.tflite'], 1,
     r"level 3 of replicate 0 is not finished in '.*other_run'; finished: \[\]"),
    ('cli_export_bad_quantization', lambda e: ['export', e.other_run, '--quantization=int4',
                                               f'--out={e.exports}/m.tflite'], 2, r'--quantization.*int4'),
]


class BadInputTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    cls.env = _Env(cls.root)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def _assert_unchanged(self, before, after):
    self.assertEqual(sorted(after), sorted(before), 'variables or files were added or removed')
    changed = [key for key in before
               if not (np.array_equal(before[key], after[key], equal_nan=True)
                       if isinstance(before[key], np.ndarray) else before[key] == after[key])]
    self.assertEqual(changed, [], 'a refused call changed these')

  def _check_refused(self, call, error, regex):
    before = _state(self.env)
    try:
      with self.assertRaisesRegex(error, regex):
        call(self.env)
      self._assert_unchanged(before, _state(self.env))
    finally:
      _restore(self.env, before)

  @parameterized.named_parameters(CASES)
  def test_bad_input_is_refused_clearly_and_changes_nothing(self, call, error, regex):
    self._check_refused(call, error, regex)

  @parameterized.named_parameters(CLI_CASES)
  def test_bad_command_line_exits_with_status_and_message_and_writes_nothing(self, args, status, regex):
    before = _state(self.env)
    got_status, stderr = _cli(*args(self.env))
    self.assertEqual(got_status, status, stderr)
    self.assertRegex(stderr, regex)
    self._assert_unchanged(before, _state(self.env))

  def test_every_case_name_is_unique(self):
    names = [case[0] for case in CASES + CLI_CASES]
    self.assertEqual(len(names), len(set(names)))


if __name__ == '__main__':
  tf.test.main()
