"""Tests for walking a model's wrappers and the weights outside them (`ltp_tfmot.core.model_walk`), on plain objects."""

import tensorflow as tf

from ltp_tfmot.core import model_walk


class _Layer:

  def __init__(self, name, weights=(), built=True):
    self.name, self.weights, self.built = name, list(weights), built


class _Wrapper(_Layer):
  pass


class _Model(_Layer):

  def __init__(self, name, layers):
    super().__init__(name)
    self.layers = layers


class _Variable:

  def __init__(self, value):
    self.value = value

  def assign(self, value):
    self.value = value


def _model():
  shared = object()
  inner = _Model('inner', [_Wrapper('w2', ['k2']), _Layer('norm', ['gamma', shared])])
  return _Model('outer', [_Wrapper('w1', ['k1']), inner, _Layer('again', [shared])])


class ModelWalkTest(tf.test.TestCase):

  def test_the_wrappers_of_nested_models_and_lists_in_order(self):
    model = _model()
    names = lambda model: [w.name for w in model_walk.lottery_wrappers(model, _Wrapper, _Model)]
    self.assertEqual(names(model), ['w1', 'w2'])
    self.assertEqual(names([model.layers[1], model.layers[0]]), ['w2', 'w1'])
    self.assertEqual(names(_Layer('plain')), [])

  def test_the_weights_outside_the_wrappers_each_once(self):
    pairs = model_walk.weights_outside(_model(), _Wrapper, _Model)
    self.assertEqual([(layer.name, weight) for layer, weight in pairs][:1], [('norm', 'gamma')])
    self.assertLen(pairs, 2)  # gamma and the shared weight, once
    self.assertEqual(model_walk.weights_outside(_Layer('layer', ['w']), _Wrapper, _Model), [])

  def test_no_wrapper_or_an_unbuilt_one_raises(self):
    with self.assertRaisesRegex(ValueError, r'has no PruneLotteryTicket layer'):
      model_walk.check_built([])
    with self.assertRaisesRegex(ValueError, r"layers \['w'\] are not built yet"):
      model_walk.check_built([_Wrapper('w', built=False)])

  def test_variables_are_restored_when_the_block_raises_only(self):
    variable = _Variable(1)
    with self.assertRaises(KeyError):
      with model_walk.restored_on_error([variable], lambda v: v.value):
        variable.assign(2)
        raise KeyError('x')
    self.assertEqual(variable.value, 1)
    with model_walk.restored_on_error([variable], lambda v: v.value):
      variable.assign(3)
    self.assertEqual(variable.value, 3)

  def test_the_subclassed_model_error_names_the_class_and_the_fix(self):
    self.assertRegex(str(model_walk.subclassed_model_error(_Model('m', []))),
                     r'to_prune is a subclassed model \(_Model\).*Sequential or functional model')


if __name__ == '__main__':
  tf.test.main()
