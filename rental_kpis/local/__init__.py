"""The local backend: one module per AWS service it stands in for.

``submit`` is EMR's step runner (spark-submit of the zipped library), ``spark_app`` the Spark
steps of a run as one application; ``runner`` the whole pipeline (the state machine's part)
with ``raw_zone`` (the raw upload), ``run_records``, ``run_ids`` and ``run_tables`` (a run's
record, its id, the tables it wrote) and ``lock`` (the lake lock); ``glue`` the crawler and
catalog, ``athena`` the named queries on DuckDB (``athena_sql`` translates their dialect).
"""
