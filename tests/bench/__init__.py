"""Benchmarks (`make bench`). Files are named bench_*.py so pytest never collects them; each has a main().
test_*.py here check the benchmarks' own parts (seed, yardstick views, counters) with the suite."""
