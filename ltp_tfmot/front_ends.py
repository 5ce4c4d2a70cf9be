"""The public names that take a model, for both Keras front ends: each call goes to its model's front end.

`ltp_tfmot.prune_lottery_ticket(model, ...)` prunes a Keras 2 (tf_keras)
model with the tfmot front end (`ltp_tfmot.keras2`) and a Keras 3 model
(`import keras`, on the TensorFlow or JAX backend) with `ltp_tfmot.keras3`.
The front end is told by the classes the object is made of, so a Keras 3
program that calls ltp_tfmot never imports tfmot, which would switch
`tf.keras` to Keras 2. Objects of neither Keras go to the Keras 2 front end,
whose errors name what is expected.
"""

import importlib

KERAS2 = 'keras2'
KERAS3 = 'keras3'

# Public name -> (its module in each front end, the argument the front end is told by).
_DISPATCHED = {
    'prune_lottery_ticket': ('prune', 'to_prune'),
    'strip_pruning': ('prune', 'model'),
    'prunable_layer_names': ('prune', 'model'),
    'unprunable_layers': ('prune', 'model'),
    'lottery_wrappers': ('wrapped_model', 'model'),
    'steps_done': ('wrapped_model', 'model'),
    'take_snapshot': ('rewind', 'model'),
    'rewind_weights': ('rewind', 'model'),
    'reset_optimizer': ('rewind', 'optimizer'),
    'unwrapped_layer_weights': ('rewind', 'model'),
    'compute_next_masks': ('rounds', 'model'),
    'apply_masks': ('rounds', 'model'),
    'run_lottery_round': ('rounds', 'model'),
    'layer_sparsity': ('rounds', 'model'),
    'weights_remaining': ('rounds', 'model'),
    'save_ticket': ('tickets', 'model'),
    'load_ticket': ('tickets', 'model'),
    'unit_plan': ('unit_groups', 'model'),
    'kept_units': ('structured', 'model'),
    'shrink': ('structured', 'model'),
}
# Modules of a front end that live outside its package (built on its rounds): (front end, module) -> path.
_ELSEWHERE = {(KERAS2, 'structured'): 'methods.structured'}


def front_end_of(obj):
  """'keras3' for a Keras 3 object (or a list whose first Keras object is one), else 'keras2'.

  Args:
    obj: A model, layer, optimizer, or a list or tuple of them.

  Returns:
    `KERAS2` or `KERAS3`.
  """
  for item in obj if isinstance(obj, (list, tuple)) else (obj,):
    for cls in type(item).__mro__:
      package = cls.__module__.split('.')[0]
      if package == 'tf_keras':
        return KERAS2
      if package == 'keras':
        return KERAS3
  return KERAS2


def _module_path(front_end, module):
  """The path of a front end's module, under `ltp_tfmot`: 'keras3.rounds'."""
  return _ELSEWHERE.get((front_end, module), f'{front_end}.{module}')


def function_of(front_end, name):
  """The function `name` of a front end (its module imported on first use)."""
  return getattr(importlib.import_module(f'ltp_tfmot.{_module_path(front_end, _DISPATCHED[name][0])}'), name)


def _dispatcher(name):
  module, argument = _DISPATCHED[name]

  def dispatch(*args, **kwargs):
    obj = args[0] if args else kwargs.get(argument)
    return function_of(front_end_of(obj), name)(*args, **kwargs)

  dispatch.__name__ = dispatch.__qualname__ = name
  dispatch.__doc__ = (f'`ltp_tfmot.{_module_path(KERAS2, module)}.{name}` for a Keras 2 (tf_keras) `{argument}`, '
                      f'`ltp_tfmot.{_module_path(KERAS3, module)}.{name}` for a Keras 3 one (see their documentation).')
  return dispatch


for _name in _DISPATCHED:
  globals()[_name] = _dispatcher(_name)


class UpdateLotteryStep:
  """Runs the lottery-ticket schedule during `fit`, for a Keras 2 or a Keras 3 model.

  The callback of the model's front end (`ltp_tfmot.keras2.callbacks.UpdateLotteryStep`
  or `ltp_tfmot.keras3.callbacks.UpdateLotteryStep`, see them) is made when
  `fit` gives it the model; every other attribute is that callback's.

  Example:

  ```python
  model.fit(x, y, epochs=10, callbacks=[ltp_tfmot.UpdateLotteryStep()])
  ```
  """

  # Keras 3 reads this before it gives the model: the Keras 3 callback is async-safe (its own `async_safe`), and
  # tf_keras does not read it.
  async_safe = True

  def __init__(self):
    self.callback = None
    self._front_end = None
    self._params = None

  def set_model(self, model):
    front_end = front_end_of(model)
    if self._front_end != front_end:
      self._front_end = front_end
      self.callback = importlib.import_module(f'ltp_tfmot.{front_end}.callbacks').UpdateLotteryStep()
      if self._params is not None:
        self.callback.set_params(self._params)
    self.callback.set_model(model)

  def set_params(self, params):
    self._params = params
    if self.callback is not None:
      self.callback.set_params(params)

  def __getattr__(self, name):
    callback = self.__dict__.get('callback')
    if callback is not None:
      return getattr(callback, name)
    if name.startswith('on_'):  # Keras may look at the hooks before it gives the model
      return _no_model_yet
    raise AttributeError(f'UpdateLotteryStep has no {name!r} before fit gives it a model')


def _no_model_yet(*args, **kwargs):
  del args, kwargs
