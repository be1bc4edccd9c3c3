"""Benchmarks (``make bench``): each ``bench_*.py`` has a ``main()``; results go to ``benchmarks/results/``."""
