"""What both Keras front ends share, knowing no Keras: the maths, the criteria, the schedules, the file format.

`masks` (exact-count keep masks, unit and block pooling), `criteria` (the
rules that score weights and their registry), `schedule` (the rounds of a
pruning schedule), `selection` (the pools of a round and their next masks),
`rewind` (what survivors and pruned weights start from), `seeds` (the seeds of
random draws), `steps` (the training steps the wrappers count), `model_walk` (a model's wrappers and the weights outside
them), `tickets` (the ticket file format), `unit_plan` (the units a
structured ticket ties together) and `unit_shrink` (slicing removed units
out). A front end (`ltp_tfmot.keras2`, `ltp_tfmot.keras3`) turns a model's
weights into these tensors and the results back into the model's variables.
"""
