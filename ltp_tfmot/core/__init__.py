"""The mask maths both Keras front ends share: arrays in, arrays out, no Keras.

`masks` holds exact-count keep masks, unit and block pooling and the seeds of
random masks. A front end (`ltp_tfmot.keras2` today) turns a model's weights
into these arrays and the arrays back into the model's masks.
"""
