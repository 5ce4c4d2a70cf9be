"""The Keras 2 (tf_keras) front end, built on the TensorFlow Model Optimization Toolkit.

Its modules, from the bottom up: `criteria` (scores and their registry),
`unit_groups` (the units a structured ticket removes), `model_layers`,
`wrapper` (`PruneLotteryTicket`, a tfmot `PruneLowMagnitude`), `schedule`
(the `PruningSchedule`s), `rounds` (snapshots, rounds, rewinding), `prune`
(wrapping a model), `callbacks` (`UpdateLotteryStep`), `tickets` (ticket
files) and `compat` (the `lottery_ticket_pruner` API). Their public names are
re-exported by `ltp_tfmot`.
"""
