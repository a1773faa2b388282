"""The three pipeline steps at the job edge: read, transform, write, and the run summary.

Each step reads the lake, calls the SPEC transforms (``validation``, ``kpis``) and writes its
tables, switched in together (``fs.switch_together``); how Spark runs the validation is
``execution``'s concern. ``main`` and ``main_app`` are the command lines: ``emr_steps/*.py``
and the local run's one application.
"""

from __future__ import annotations

import argparse
import json
import platform
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from functools import partial

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from rental_kpis import __version__
from rental_kpis.errors import InputError
from rental_kpis.layout import DATASETS, DIMENSIONS, Lake, new_run_id, run_id_argument
from rental_kpis.spark import execution, fs, kpis
from rental_kpis.spark.execution import Flagged, Validation
from rental_kpis.spark.readers import read_header
from rental_kpis.spark.schemas import curated_schema
from rental_kpis.spark.validation import (
    curated_rows,
    rejected_rows,
    valid_keys,
    with_dimension_reason,
    with_transaction_reason,
)

RENTALS = "rental_transactions"  # the dataset checked against the three dimensions


def write_parquet(
    df: DataFrame,
    uri: str,
    partition_by: list[str] | None = None,
    into: fs.Switch | None = None,
) -> None:
    """Replace the table at ``uri`` whole (Snappy Parquet, ``_SUCCESS`` last).

    Spark writes into a staging folder; only a complete write is switched into place, so a
    failure leaves the previous table complete and queryable. With ``into`` the switch waits
    for the step's other tables (``fs.switch_together``).
    """
    spark = df.sparkSession
    staging = fs.staging_uri(uri, secrets.token_hex(4))
    writer = df.write.mode("overwrite").option("compression", "snappy")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.parquet(staging)
    if partition_by and not any(not is_file for _, is_file in fs.list_folder(spark, staging)):
        # An empty partitioned write leaves only _SUCCESS: no file tells Spark, the crawler or
        # Athena the table's columns. Kept unpartitioned, the empty table keeps its schema
        # and every query on it returns no rows.
        df.limit(0).write.mode("overwrite").option("compression", "snappy").parquet(staging)
    if into is not None:
        into.add(staging, uri)
    else:
        fs.swap_in(spark, staging, uri)


def write_counted(
    df: DataFrame,
    uri: str,
    partition_by: list[str] | None = None,
    into: fs.Switch | None = None,
) -> dict:
    """Write a table and count its rows during the same job (an Observation, not a count())."""
    observation = Observation(uri)
    started = time.monotonic()
    observed = df.observe(observation, F.count(F.lit(1)).alias("rows"))
    write_parquet(observed, uri, partition_by, into)
    return {
        "uri": uri,
        "rows": observation.get["rows"],
        "seconds": round(time.monotonic() - started, 3),
    }


def write_table(df: DataFrame, lake: Lake, table: str, into: fs.Switch | None = None) -> dict:
    """Write KPI table ``table`` to ``processed/<table>/``, partitioned as kpis.PARTITIONS says."""
    return write_counted(df, lake.processed(table), kpis.PARTITIONS.get(table), into)


def read_curated(spark: SparkSession, lake: Lake, dataset: str) -> DataFrame:
    """The curated table ``dataset`` as ``validate_raw`` writes it, read with its schema given
    (Spark would otherwise run a job to read it from the files' footers)."""
    return spark.read.schema(curated_schema(dataset)).parquet(lake.curated(dataset))


def write_tables(spark: SparkSession, lake: Lake, tables: dict[str, DataFrame]) -> dict:
    """Write a KPI step's tables side by side, switched in together; return the step's body.

    Parameters: ``tables``, table name -> its frame. Returns ``tables`` (name -> uri, rows,
    seconds) and ``timings_seconds`` (per table and in total).
    """
    started = time.monotonic()
    with fs.switch_together(spark, lake.root) as together:
        writes = {
            name: partial(write_table, df, lake, name, together) for name, df in tables.items()
        }
        written = execution.run_parallel(spark, writes)
    return {
        "tables": written,
        "timings_seconds": {
            **{name: table["seconds"] for name, table in written.items()},
            "total": round(time.monotonic() - started, 3),
        },
    }


def vehicle_location_metrics(spark: SparkSession, lake: Lake) -> dict:
    """SPEC §4: location_performance and vehicle_type_performance from curated/."""
    rentals = read_curated(spark, lake, RENTALS)
    locations = read_curated(spark, lake, "locations")
    vehicles = read_curated(spark, lake, "vehicles")
    tables = {
        "location_performance": kpis.location_performance(rentals, locations),
        "vehicle_type_performance": kpis.vehicle_type_performance(rentals, vehicles),
    }
    return write_tables(spark, lake, tables)


def user_transaction_metrics(spark: SparkSession, lake: Lake) -> dict:
    """SPEC §4: user_metrics and daily_metrics (partitioned by year, month) from curated/."""
    rentals = read_curated(spark, lake, RENTALS)
    users = read_curated(spark, lake, "users")
    tables = {
        "user_metrics": kpis.user_metrics(rentals, users),
        "daily_metrics": kpis.daily_metrics(rentals),
    }
    return write_tables(spark, lake, tables)


def write_summary(spark: SparkSession, lake: Lake, run_id: str, step: str, body: dict) -> dict:
    """Write ``runs/<run_id>/<step>.json``: ``body`` with the step, status and versions."""
    summary = {
        "step": step,
        "run_id": run_id,
        "status": "succeeded",
        **body,
        "versions": {
            "rental_kpis": __version__,
            "spark": spark.version,
            "python": platform.python_version(),
        },
    }
    fs.write_text(spark, lake.run_summary(run_id, step), json.dumps(summary, indent=2) + "\n")
    return summary


def write_flagged(flagged: Flagged, lake: Lake, dataset: str, into: fs.Switch) -> Flagged:
    """Write the curated and rejected tables of a flagged dataset side by side; return it
    with the seconds of the writes added."""
    started = time.monotonic()
    spark = flagged.frame.sparkSession
    tables = {
        lake.curated(dataset): curated_rows(flagged.frame, dataset),
        lake.rejected(dataset): rejected_rows(flagged.frame, dataset),
    }
    writes = {uri: partial(write_parquet, df, uri, into=into) for uri, df in tables.items()}
    execution.run_parallel(spark, writes)
    return replace(flagged, seconds=flagged.seconds + time.monotonic() - started)


def flag_and_write(
    run: Validation, dataset: str, reasons: execution.Reasons, lake: Lake, into: fs.Switch
) -> Flagged:
    """``run.flag`` then ``write_flagged``: one dataset from raw to its two tables."""
    return write_flagged(run.flag(dataset, reasons), lake, dataset, into)


def validate_raw(spark: SparkSession, lake: Lake) -> dict:
    """SPEC §3: raw CSV -> curated typed Parquet + rejected rows, and the step's body.

    Returns ``datasets`` (each one's row accounting), ``timings_seconds`` and ``outputs``.
    Raises ``InputError`` (a missing dataset, a bad header) before any Spark job.
    """
    started = time.monotonic()
    for name in DATASETS:  # every header first: bad input fails before any Spark job
        read_header(spark, name, lake.raw(name))
    with fs.switch_together(spark, lake.root) as together, Validation(spark, lake) as run:
        reasons = {name: partial(with_dimension_reason, dataset=name) for name in DIMENSIONS}
        dimensions = run.flag_each(reasons)
        keys = {
            name: execution.broadcast(valid_keys(dimensions[name].frame, name))
            for name in DIMENSIONS
        }
        rentals = partial(
            with_transaction_reason,
            user_keys=keys["users"],
            vehicle_keys=keys["vehicles"],
            location_keys=keys["locations"],
        )
        done = execution.run_parallel(
            spark,
            {
                **{
                    name: partial(write_flagged, dimensions[name], lake, name, together)
                    for name in DIMENSIONS
                },
                RENTALS: partial(flag_and_write, run, RENTALS, rentals, lake, together),
            },
        )
    return {
        "datasets": {name: done[name].counts for name in DATASETS},
        "timings_seconds": {
            **{name: round(done[name].seconds, 3) for name in DATASETS},
            "total": round(time.monotonic() - started, 3),
        },
        "outputs": {
            "curated": {name: lake.curated(name) for name in DATASETS},
            "rejected": {name: lake.rejected(name) for name in DATASETS},
        },
    }


StepFunction = Callable[[SparkSession, Lake], dict]

STEP_FUNCTIONS: dict[str, StepFunction] = {
    "validate_raw": validate_raw,
    "vehicle_location_metrics": vehicle_location_metrics,
    "user_transaction_metrics": user_transaction_metrics,
}


def parse_args(step: str, argv: list[str]) -> argparse.Namespace:
    """The command line of ``emr_steps/<step>.py``: ``--lake-root`` and ``--run-id``."""
    parser = argparse.ArgumentParser(prog=f"{step}.py", description=f"rental_kpis step {step}")
    parser.add_argument("--lake-root", required=True, help="s3://bucket or a local lake folder")
    parser.add_argument("--run-id", type=run_id_argument, help="groups the summaries of one run")
    return parser.parse_args(argv)


def run_step(spark: SparkSession, step: str, lake: Lake, run_id: str) -> dict:
    """Run ``step`` on ``lake`` (after finishing any switch a killed step left) and write its
    summary; return the summary."""
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    fs.recover_switches(spark, lake.root)  # a switch a killed step left half done
    body = STEP_FUNCTIONS[step](spark, lake)
    body = {
        "started_at": started_at,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **body,
    }
    return write_summary(spark, lake, run_id, step, body)


# A line the local runner reads from the application's output to follow it stage by stage.
STAGE_MARK = "rental_kpis.stage "


def stage_mark(step: str, event: str) -> str:
    """The progress line of ``event`` ("start", "done", "failed") for ``step``."""
    return STAGE_MARK + json.dumps({"step": step, "event": event})


def parse_stage_mark(line: str) -> tuple[str, str] | None:
    """``(step, event)`` when ``line`` is a progress line of ``stage_mark``, else None."""
    if not line.startswith(STAGE_MARK):
        return None
    try:
        mark = json.loads(line[len(STAGE_MARK) :])
        return str(mark["step"]), str(mark["event"])
    except (ValueError, KeyError, TypeError):
        return None


def run_steps(
    spark: SparkSession,
    steps: list[str],
    lake: Lake,
    run_id: str,
    announce: Callable[[str], None] = lambda line: None,
) -> list[dict]:
    """Run ``steps`` in order in one session; each writes its own summary, as on EMR.

    ``announce`` receives a ``stage_mark`` line before and after each step (and "failed"
    when one raises), so a caller reading the output can time and log every step on its own.
    """
    summaries = []
    for step in steps:
        announce(stage_mark(step, "start"))
        try:
            summaries.append(run_step(spark, step, lake, run_id))
        except BaseException:
            announce(stage_mark(step, "failed"))
            raise
        announce(stage_mark(step, "done"))
    return summaries


def main(step: str, argv: list[str] | None = None) -> int:
    """Entry point of ``emr_steps/<step>.py``: parse, run, exit non-zero on failure.

    Bad input prints one line (``error: …``) and exits 2; anything else escapes with its
    traceback so that EMR marks the step FAILED with the cause in its log.
    """
    args = parse_args(step, sys.argv[1:] if argv is None else argv)
    return _submit_main(f"rental_kpis.{step}", [step], args.lake_root, args.run_id, marks=False)


def parse_app_args(argv: list[str]) -> argparse.Namespace:
    """The command line of the local run's application; ``--steps`` becomes a list of known
    steps (an unknown one exits 2 with argparse's message)."""
    parser = argparse.ArgumentParser(
        prog="rental_kpis_app.py", description="the Spark steps of a local run, one session"
    )
    parser.add_argument("--lake-root", required=True, help="s3://bucket or a local lake folder")
    parser.add_argument("--run-id", default=None, help="groups the summaries of one run")
    parser.add_argument(
        "--steps",
        required=True,
        help=f"comma-separated, in order, among {','.join(STEP_FUNCTIONS)}",
    )
    args = parser.parse_args(argv)
    args.steps = [s for s in args.steps.split(",") if s]
    unknown = [s for s in args.steps if s not in STEP_FUNCTIONS]
    if unknown or not args.steps:
        parser.error(f"unknown step(s) {', '.join(unknown) or '(none)'}")
    return args


def main_app(argv: list[str] | None = None) -> int:
    """Entry point of the local run's one Spark application: several steps, one session.

    The local runner submits this (with the same zip) instead of one ``emr_steps/*.py`` per
    step: one JVM start instead of three. Each step still writes its own run summary, and a
    progress line (``stage_mark``) before and after it lets the runner time, log and blame
    each step separately; exit codes are those of ``main``.
    """
    args = parse_app_args(sys.argv[1:] if argv is None else argv)
    return _submit_main("rental_kpis.local_run", args.steps, args.lake_root, args.run_id, True)


def _submit_main(
    app_name: str, steps: list[str], lake_root: str, run_id: str | None, marks: bool
) -> int:
    from rental_kpis.spark.session import build_session

    def announce(line: str) -> None:
        if marks:
            print(line, flush=True)

    spark = build_session(app_name)
    try:
        summaries = run_steps(spark, steps, Lake(lake_root), run_id or new_run_id(), announce)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    finally:
        spark.stop()
    for summary in summaries:
        print(
            json.dumps(
                {
                    "step": summary["step"],
                    "status": summary["status"],
                    "seconds": summary["timings_seconds"]["total"],
                }
            ),
            flush=True,
        )
    return 0
