"""Benchmarks of jupyter_orch against a real Jupyter server: `python benchmarks/run.py`."""
