"""Benchmarks: ``python -m bench.run`` (ketfaq vs the LangChain reference) and ``python -m bench.scaling``."""
