"""The systems benchmarks/compare.py measures Perdure against, one module each."""
