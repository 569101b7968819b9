"""The shoppers' load model and its generator (issue 18): ``python -m bench.load.run``."""
