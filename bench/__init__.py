"""Benchmarks: `python -m bench` (see bench/README.md). Not tests: they print figures, they assert nothing."""
