"""What both Keras front ends share: mask maths, criteria and schedules, knowing no Keras.

`masks` holds exact-count keep masks, unit and block pooling and the seeds of
random masks; `criteria` the rules that score weights and their registry;
`schedule` the rounds of a pruning schedule. A front end (`ltp_tfmot.keras2`
today) turns a model's weights into these tensors and the results back into
the model's masks.
"""
