"""Methods built on lottery rounds: pruning at initialization, supermasks, early-bird and structured tickets.

Each uses the public functions of the front end (`ltp_tfmot.keras2`) and the
mask maths (`ltp_tfmot.core`); their public names are re-exported by
`ltp_tfmot`.
"""
