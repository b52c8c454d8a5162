"""Benchmarks (never tests): `python -m pyimpl.bench runtime|engine|capi|http ...`."""
