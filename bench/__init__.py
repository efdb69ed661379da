"""Benchmarks (``invoke bench``). Each ``bench/bench_*.py`` module has ``run(quick: bool) -> dict``."""
