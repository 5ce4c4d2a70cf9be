"""The Keras 3 front end (`import keras`, on the TensorFlow or the JAX backend), without tfmot.

Its modules, from the bottom up (the criteria and schedules it uses are
`ltp_tfmot.core`'s): `wrapper` (`PruneLotteryTicket`, a `keras.layers.Wrapper`
holding a layer's masks, its rewind point and the round counters as layer
variables, and which Keras 3 layers and weights are pruned) and `prune`
(wrapping whole models, finding their wrappers, unwrapping them). Nothing here
imports tf_keras or tensorflow_model_optimization: importing tfmot switches
`tf.keras` to Keras 2.
"""
