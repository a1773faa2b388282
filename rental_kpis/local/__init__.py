"""The local backend: one module per AWS service it stands in for.

``submit`` is EMR's step runner (spark-submit of the zipped library), ``runner`` the whole
pipeline with its lock and run records (the state machine's part), ``glue`` the crawler and
catalog, ``athena`` the named queries on DuckDB (``athena_sql`` translates their dialect).
"""
