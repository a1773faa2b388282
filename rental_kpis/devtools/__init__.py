"""Developer tools, not part of a run: the synthetic data generator and the DuckDB oracle
that the tests and benchmarks compare the Spark tables with."""
