"""Benchmarks: `python bench/bench_core.py` (see its docstring)."""
