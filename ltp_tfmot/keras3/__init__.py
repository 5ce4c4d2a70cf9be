"""The Keras 3 front end (`import keras`, on the TensorFlow or the JAX backend), without tfmot.

Its modules, from the bottom up (over `ltp_tfmot.core`): `wrapper`
(`PruneLotteryTicket`, a `keras.layers.Wrapper` holding a layer's masks, its
rewind point and the round counters as layer variables, and which Keras 3
layers and weights are pruned), `unit_groups` (a model's graph read into the
core's unit plan), `prune` (wrapping whole models, unwrapping them),
`wrapped_model` (a model's wrappers, reading variables, step counts),
`rewind` (snapshots, rewinding weights and optimizer), `model_scores` (SNIP,
GraSP and SynFlow on either backend), `rounds` (the next masks through the
core's selection, round boundaries), `init_pruning` (what pruning at
initialization needs of a Keras 3 model), `structured` (`kept_units`,
`shrink`), `callbacks` (`UpdateLotteryStep`, rounds at exact steps inside
compiled multi-step calls) and `tickets` (ticket files in the Keras 2 front
end's format). Nothing here imports tf_keras or tensorflow_model_optimization:
importing tfmot switches `tf.keras` to Keras 2.
"""
