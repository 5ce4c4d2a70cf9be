"""Benchmarks of ltp_tfmot against the older package, tfmot and dense training.

Run them all with `PYTHONPATH=. .venv/bin/python benchmarks/run_all.py` (writes BENCHMARKS.md); see that
file for what each benchmark measures.
"""
