"""The walkthrough on the local backend: the lake folder, spark-submit of the step scripts, the
DuckDB catalog and queries. Each method is a call into ``rental_kpis.local`` plus a frame from
``tables`` for the notebook to show."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from rental_kpis.errors import NoRunYet, UnknownName
from rental_kpis.layout import DATABASE, DATASETS, TABLES, Lake, is_raw_data_file
from rental_kpis.stages import SPARK_STAGES
from rental_kpis.walkthrough.tables import (
    by_key,
    catalog_frame,
    deployment_of,
    known_table,
    layout_table,
    raw_check,
    run_facts,
    stage_timeline,
    stages_of,
)

NO_DEFAULT: Any = object()


def _running(spark: Any) -> bool:
    """A SparkSession whose context has not been stopped."""
    return spark is not None and getattr(spark.sparkContext, "_jsc", None) is not None


def _files(folder: Path, deep: bool = False) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in (folder.rglob("*") if deep else folder.iterdir()) if p.is_file()]


class LocalBackend:
    """The lake folder, spark-submit of the step scripts, the DuckDB catalog."""

    name = "local"

    def __init__(
        self, lake: str | Path, raw: str | Path, bucket: str = "", region: str = ""
    ) -> None:
        self.lake = Lake(str(lake))
        self.raw = Path(raw)
        # What an AWS deployment would be named: the IAM and EMR views show it locally too.
        self.deployment = deployment_of(bucket, region)

    def where(self) -> str:
        return f"local lake {self.lake.root}"

    def cluster_config(self) -> dict[str, Any]:
        """The RunJobFlow request of the cluster a first ``rental-kpis aws setup`` deploys
        (the default one): what the EMR view shows locally."""
        from rental_kpis.aws import emr

        return emr.cluster_config(self.deployment)

    def layout(self) -> pd.DataFrame:
        return layout_table(self.lake)

    def connectivity(self) -> pd.DataFrame:
        """What the pipeline needs here: a writable lake folder, the raw files, a Java for Spark."""
        from rental_kpis.spark.session import find_java_home

        root = Path(self.lake.root)
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".write-check"
        probe.write_text("ok")
        probe.unlink()
        checks = [
            ("lake folder writable", str(root)),
            ("raw data present", ", ".join(d for d in DATASETS if (self.raw / d).is_dir())),
            ("Java for Spark", find_java_home()),
        ]
        return pd.DataFrame(checks, columns=["check", "result"]).set_index("check")

    def upload_raw(self) -> pd.DataFrame:
        """Copy ``raw/<dataset>/*.csv`` (``.CSV``, ``.csv.gz``) into the lake's raw zone (the
        local S3 upload)."""
        from rental_kpis.local.raw_zone import load_raw

        copied = load_raw(self.raw, self.lake)
        return pd.DataFrame(
            [{"dataset": d, "files": n, "to": self.lake.raw(d) + "/"} for d, n in copied.items()]
        ).set_index("dataset")

    def verify_raw(self) -> pd.DataFrame:
        files = [
            (dataset, path.name, path.read_bytes())
            for dataset in DATASETS
            for path in sorted(Path(self.lake.raw(dataset)).iterdir())
            if is_raw_data_file(path.name)
        ]
        return raw_check(files)

    def run_steps(self, run_id: str, spark: Any = None) -> pd.DataFrame:
        """The three Spark steps, as EMR runs them; returns their timeline.

        Given ``spark`` (the notebook's session, still running) and a small raw zone, they run
        in that session: the same step functions the scripts call, and the demo starts Spark
        once. A larger raw zone, or a stopped session, gets a spark-submit application of its
        own, as ``rental-kpis run`` does. A run whose steps already succeeded (the cell run
        again) is shown as it was recorded, not run again: a finished run is never rewritten.
        """
        from rental_kpis.local.raw_zone import raw_bytes
        from rental_kpis.local.runner import run_local
        from rental_kpis.local.spark_app import SMALL_INPUT_BYTES

        if not set(SPARK_STAGES) & set(self.pending_stages(run_id)):
            return self.run_timeline(run_id)
        small = (raw_bytes(self.lake) or 0) < SMALL_INPUT_BYTES
        session = spark if small and _running(spark) else None
        run_local(None, Path(self.lake.root), run_id=run_id, steps=SPARK_STAGES, spark=session)
        return self.run_timeline(run_id)

    def run_pipeline(self, run_id: str) -> pd.DataFrame:
        """The whole pipeline (steps, crawl, queries) from the raw zone; returns its timeline.

        A run that already exists is continued, not repeated: only its stages that have not
        succeeded run (after sprint 2's ``run_steps``: crawl and queries), so the demo runs
        the Spark steps once and the run ends "succeeded" with every stage in one record.
        """
        from rental_kpis.local.runner import run_local

        pending = self.pending_stages(run_id)
        if pending:
            run_local(None, Path(self.lake.root), run_id=run_id, steps=pending)
        return self.run_timeline(run_id)

    def pending_stages(self, run_id: str) -> tuple[str, ...]:
        """The stages of a whole local run that run ``run_id`` has not yet succeeded in."""
        from rental_kpis.local.run_records import LOCAL_STAGES

        path = Path(self.lake.uri("runs", run_id, "run.json"))
        done = json.loads(path.read_text())["stages"] if path.exists() else {}
        return tuple(s for s in LOCAL_STAGES if done.get(s, {}).get("status") != "succeeded")

    def rental_pairs(self) -> pd.DataFrame:
        """Pickup and dropoff location of every valid rental (the curated zone)."""
        return self.curated("rental_transactions", ["pickup_location", "dropoff_location"])

    def curated(self, dataset: str, columns: list[str]) -> pd.DataFrame:
        """``columns`` of a curated dataset, read straight from its Parquet files."""
        import duckdb

        from rental_kpis.spark.schemas import column_names

        unknown = [c for c in columns if c not in column_names(dataset)]
        if unknown:
            raise UnknownName(f"{dataset} has no column {', '.join(unknown)}")
        files = str(Path(self.lake.curated(dataset)) / "*.parquet")
        with duckdb.connect() as con:
            selected = ", ".join(f'"{c}"' for c in columns)
            return con.execute(f"SELECT {selected} FROM read_parquet(?)", [files]).fetchdf()

    def step_summary(self, run_id: str, step: str) -> dict[str, Any]:
        """What ``step`` of run ``run_id`` reported; TablesReplaced when the lake's tables are
        no longer that run's (its numbers would sit beside another run's tables)."""
        from rental_kpis.local.run_tables import check_tables_of

        check_tables_of(self.lake, run_id)
        return json.loads(Path(self.lake.run_summary(run_id, step)).read_text())

    def run_record(self, run_id: str) -> dict[str, Any]:
        return json.loads(Path(self.lake.uri("runs", run_id, "run.json")).read_text())

    def has_raw(self) -> bool:
        """Every dataset has a data file in the lake's raw zone (notebook 01 uploaded it)."""
        return all(
            any(is_raw_data_file(p.name) for p in _files(Path(self.lake.raw(d)))) for d in DATASETS
        )

    def has_tables(self) -> bool:
        """Every KPI table has Parquet files in the processed zone (a run's steps wrote it)."""
        return all(
            any(p.suffix == ".parquet" for p in _files(Path(self.lake.processed(t)), deep=True))
            for t in TABLES
        )

    def current_run_id(self, default: Any = NO_DEFAULT) -> str:
        """The run whose Spark steps wrote the tables the lake holds now (by the fingerprint
        its record keeps; a record from before fingerprints counts by its steps alone), newest
        first; ``default`` (else NoRunYet) when no record says so. A report's numbers and its
        tables then always belong to one run."""
        from rental_kpis.local.run_records import run_history
        from rental_kpis.local.run_tables import TABLES_KEY, tables_fingerprint

        now = tables_fingerprint(self.lake)
        for record in run_history(self.lake, limit=10**9):
            spark_done = all(
                record["stages"].get(s, {}).get("status") == "succeeded" for s in SPARK_STAGES
            )
            if spark_done and record.get(TABLES_KEY, now) == now:  # none kept: older record
                return record["run_id"]
        if default is not NO_DEFAULT:
            return default
        raise NoRunYet(f"no run on {self.lake.root} wrote the tables it holds: run the pipeline")

    def run_facts(self, run_id: str) -> pd.DataFrame:
        record = self.run_record(run_id)
        summaries = {s: self.step_summary(run_id, s) for s in SPARK_STAGES}
        return run_facts(record, summaries)

    def run_timeline(self, run_id: str) -> pd.DataFrame:
        return stage_timeline(stages_of(self.run_record(run_id)))

    def crawl(self) -> pd.DataFrame:
        from rental_kpis.local import glue

        glue.crawl(self.lake)
        return self.catalog()

    def catalog(self) -> pd.DataFrame:
        """One row per catalogued column: table, column, Glue type, partition key or not."""
        from rental_kpis.local import glue

        return catalog_frame(
            (t.name, t.location, t.columns, t.partition_keys) for t in glue.get_tables(self.lake)
        )

    def processed(self, name: str) -> pd.DataFrame:
        """A KPI table read straight from the processed zone (before any crawl), by key."""
        import duckdb

        from rental_kpis.local.glue import table_dataset

        dataset = table_dataset(Path(self.lake.processed(known_table(name))))
        with duckdb.connect() as con:
            con.register("processed_table", dataset)
            return by_key(con.execute("SELECT * FROM processed_table").fetchdf())

    def query(self, name: str) -> pd.DataFrame:
        from rental_kpis.local import athena

        result = athena.run_named_query(self.lake, name)
        return pd.DataFrame(result.rows, columns=result.columns)

    def query_plan(self, name: str) -> str:
        """The plan DuckDB makes for named query ``name`` on the local catalog (its EXPLAIN of
        the translated SQL: the physical operators, no data read)."""
        from rental_kpis import queries
        from rental_kpis.local import glue
        from rental_kpis.local.athena_sql import athena_to_duckdb

        sql = athena_to_duckdb(queries.load(name).sql)
        with glue.connect(self.lake) as con:
            return "\n".join(row[1] for row in con.execute("EXPLAIN " + sql).fetchall())

    def table(self, name: str) -> pd.DataFrame:
        """A whole KPI table, read through the catalog (as Athena would)."""
        from rental_kpis.local import glue

        with glue.connect(self.lake) as con:
            return con.execute(f'SELECT * FROM {DATABASE}."{known_table(name)}"').fetchdf()
