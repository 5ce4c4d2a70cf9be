"""Tests for registered branches: the built-ins, a user's own branch in the runner, the report and the plot."""

import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from ltp_tfmot import experiment
from ltp_tfmot.experiment import branches
from ltp_tfmot.experiment import plots
from tests import fixtures

_X, _Y = fixtures.classification_data(n=160, seed=0)
_XT, _YT = fixtures.classification_data(n=64, seed=1)
DATA = (_X, _Y, _XT, _YT)


def _mlp(input_shape, num_classes, seed):
  del input_shape, num_classes
  return fixtures.mlp(seed)


class _Replay(experiment.Branch):
  """Trains the level's ticket exactly as the main run does: the same start, so the same result."""

  name = 'replay'
  title = 'Replay'
  label = 'replayed ticket'
  line_style = '-.'
  marker = 'D'
  description = "the main run's ticket, trained again"

  def start(self, context):
    return context.main_ticket()


class _NeedsNextLevel(experiment.Branch):
  name = 'needs_next_level'
  title = 'Next'
  label = 'next'

  def needs(self, level):
    return (level + 1,)

  def start(self, context):
    raise AssertionError('start must not be called before the levels it needs are done')


class _Unwrapped(experiment.Branch):
  name = 'unwrapped'
  title = 'Unwrapped'
  label = 'unwrapped'

  def start(self, context):
    return context.build_model()


# Keras' loop (jit_compile=False): compiling a step with XLA costs these small runs more than their training.
def _config(controls, rewind_step=2):
  return experiment.RunConfig(
      model='mlp', data=experiment.DataConfig(name='toy'),
      training=experiment.TrainingConfig(learning_rate=0.01, batch_size=16, epochs=1, eval_every=3, jit_compile=False),
      pruning=experiment.PruningConfig(rate=0.5, layer_rates={}, levels=1, rewind_step=rewind_step),
      controls=controls)


def _run(run_dir, controls):
  return experiment.run_experiment(_config(controls), run_dir=run_dir, model_fn=_mlp, data=DATA, tensorboard=False,
                                   log=lambda line: None)


def _register(test, branch):
  experiment.register_branch(branch)
  test.addCleanup(experiment.unregister_branch, branch.name)


class BranchRegistryTest(tf.test.TestCase, parameterized.TestCase):

  def test_builtin_branches_come_first_in_registration_order(self):
    self.assertEqual(experiment.branch_names()[:2], ['reinit', 'random_prune'])
    self.assertEqual(branches.display_order()[:3], ['main', 'reinit', 'random_prune'])
    self.assertEqual(branches.style('reinit'), ('Reinit', 'random reinit', '--', 's'))

  def test_registered_branch_is_a_valid_control(self):
    _register(self, _Replay())
    self.assertEqual(experiment.RunConfig(controls=('reinit', 'replay')).controls, ('reinit', 'replay'))
    self.assertEqual(branches.display_order()[-1], 'replay')

  def test_unknown_control_names_the_registered_branches(self):
    with self.assertRaisesRegex(ValueError, r"controls must be one of \['reinit', 'random_prune'.*got 'replay'"):
      experiment.RunConfig(controls=('replay',))

  @parameterized.named_parameters(
      ('not_a_branch', lambda: object(), TypeError, 'must be an instance of a ltp_tfmot.experiment.Branch'),
      ('main', lambda: type('M', (_Replay,), {'name': 'main'})(), ValueError, "must not be 'main'"),
      ('bad_name', lambda: type('B', (_Replay,), {'name': 'a b'})(), ValueError, 'branch.name must be a non-empty'),
      ('no_title', lambda: type('T', (_Replay,), {'title': None})(), ValueError, 'needs a non-empty string title'),
      ('taken', lambda: type('R', (_Replay,), {'name': 'reinit'})(), ValueError, "'reinit' is already registered"),
  )
  def test_register_branch_refuses(self, make, error, message):
    with self.assertRaisesRegex(error, message):
      experiment.register_branch(make())
    self.assertEqual(experiment.branch_names()[:2], ['reinit', 'random_prune'])

  def test_builtin_branch_cannot_be_unregistered_or_replaced(self):
    with self.assertRaisesRegex(ValueError, "'reinit' is a built-in branch"):
      experiment.unregister_branch('reinit')
    builtin = experiment.get_branch('reinit')
    with self.assertRaisesRegex(ValueError, "'reinit' is a built-in branch and cannot be replaced"):
      experiment.register_branch(type('R', (_Replay,), {'name': 'reinit'})(), overwrite=True)
    self.assertIs(experiment.get_branch('reinit'), builtin)
    with self.assertRaisesRegex(ValueError, r"branch must be one of \['reinit', .*\], got 'nope'"):
      experiment.unregister_branch('nope')

  def test_branch_without_start_cannot_be_made(self):
    with self.assertRaisesRegex(TypeError, 'abstract'):
      type('NoStart', (experiment.Branch,), {'name': 'x', 'title': 'X', 'label': 'x'})()


class UserBranchRunTest(tf.test.TestCase):

  def test_user_branch_trains_and_appears_in_report_and_plot(self):
    _register(self, _Replay())
    run_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    results = _run(run_dir, ('replay', 'reinit'))
    rows = {(r['level'], r['branch']): r for r in results}
    self.assertEqual([(r['level'], r['branch']) for r in results],
                     [(0, 'main'), (1, 'main'), (1, 'reinit'), (1, 'replay')])
    main, replay = rows[(1, 'main')], rows[(1, 'replay')]
    # The branch starts where the main level did (masks, late rewind point, iteration 2), with the same data order.
    self.assertEqual(replay['weights_alive'], main['weights_alive'])
    self.assertAllClose(replay['supermask_loss'], main['supermask_loss'], rtol=1e-6, atol=0)
    self.assertAllClose(replay['test_loss'], main['test_loss'], rtol=1e-5, atol=0)
    self.assertEqual(replay['curve'][0]['iteration'], 2)
    stored = experiment.load_masks(run_dir, 0, 1, 'replay')
    for got, want in zip(stored['masks'], experiment.load_masks(run_dir, 0, 1)['masks'], strict=True):
      self.assertAllEqual(got, want)

    table = experiment.markdown_table(experiment.summarize(results))
    self.assertIn('| Level | Weights remaining | Ticket acc. | Reinit acc. | Replay acc. |', table)
    lines = [line for line in plots.plot_lines([('', results)]) if line.branch == 'replay']
    self.assertEqual({(line.label, line.line_style, line.marker, line.metric) for line in lines},
                     {('replayed ticket', '-.', 'D', 'test_accuracy'),
                      ('replayed ticket', '-.', 'D', 'early_stop_iteration')})
    md_path, png_path = experiment.write_report([run_dir])
    with open(md_path) as f:
      self.assertIn('Replay acc.', f.read())
    with open(png_path, 'rb') as f:
      self.assertEqual(f.read(8), b'\x89PNG\r\n\x1a\n')

    # A process that does not know the branch still reports it, under its name, after the registered ones.
    experiment.unregister_branch('replay')
    self.addCleanup(experiment.register_branch, _Replay())
    self.assertIn('| Ticket acc. | Reinit acc. | replay acc. |',
                  experiment.markdown_table(experiment.summarize(experiment.load_level_metrics(run_dir))))

  def test_branch_waits_for_the_levels_it_needs_and_must_return_a_wrapped_model(self):
    _register(self, _NeedsNextLevel())
    _register(self, _Unwrapped())
    run_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    with self.assertRaisesRegex(ValueError, r"branch 'needs_next_level' at level 1 needs the main run's levels \[2\]"):
      _run(run_dir, ('needs_next_level',))
    with self.assertRaisesRegex(ValueError, "branch 'unwrapped' returned a model without lottery wrappers"):
      _run(run_dir, ('unwrapped',))
    done = [(r['level'], r['branch']) for r in experiment.load_level_metrics(run_dir)]
    self.assertEqual(done, [(0, 'main'), (1, 'main')])
    self.assertTrue(np.isfinite([r['test_loss'] for r in experiment.load_level_metrics(run_dir)]).all())


if __name__ == '__main__':
  tf.test.main()
