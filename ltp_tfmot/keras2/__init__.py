"""The Keras 2 (tf_keras) front end, built on the TensorFlow Model Optimization Toolkit.

Its modules, from the bottom up (the criteria and schedules it uses are
`ltp_tfmot.core`'s): `unit_groups` (the units a structured ticket removes),
`model_layers`, `initializers` (a layer's initializers, for 'reinit'),
`masking` (applying the masks at each step), `wrapper` (`PruneLotteryTicket`,
a tfmot `PruneLowMagnitude`), `wrapped_model` (a model's wrappers, their seeds
and its step count), `rewind` (the rewind point: snapshots, rewinding weights
and optimizer), `rounds` (the next masks and round boundaries), `prune`
(wrapping a model), `callbacks` (`UpdateLotteryStep`), `tickets` (ticket
files) and `compat` (the `lottery_ticket_pruner` API). Their public names are
re-exported by `ltp_tfmot`.
"""
