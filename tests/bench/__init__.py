"""Benchmarks (`make bench`). Files are named bench_*.py so pytest never collects them; each has a main()."""
