"""Benchmarks anyone can rerun: ``uv run python -m bench.commands`` and
``uv run python -m bench.rebuild`` (see bench/README.md)."""
