"""Read → transform → write for each pipeline step; what ``emr_steps/*.py`` call.

Transforms live in ``validation`` and ``kpis``; this module is the edge where paths, the
session, the clock and the run summary are handled.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession

from rental_kpis import __version__, fs
from rental_kpis.errors import InputError
from rental_kpis.layout import DATASETS, Lake, new_run_id
from rental_kpis.readers import read_raw
from rental_kpis.validation import curated_rows, flag_all, rejected_rows, summarise


def write_parquet(df: DataFrame, uri: str, partition_by: list[str] | None = None) -> None:
    """Replace the table at ``uri`` whole (Snappy Parquet; Spark writes ``_SUCCESS`` last)."""
    writer = df.write.mode("overwrite").option("compression", "snappy")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.parquet(uri)


def write_summary(spark: SparkSession, lake: Lake, run_id: str, step: str, body: dict) -> dict:
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


def validate_raw(spark: SparkSession, lake: Lake, run_id: str) -> dict:
    """SPEC §3: raw CSV → curated typed Parquet + rejected rows + the run summary."""
    started = time.monotonic()
    raw = {name: read_raw(spark, name, lake.raw(name)) for name in DATASETS}
    flagged = flag_all(raw)
    datasets: dict[str, dict] = {}
    timings: dict[str, float] = {}
    for name in DATASETS:
        t0 = time.monotonic()
        counts = summarise(flagged[name], name)
        write_parquet(curated_rows(flagged[name], name), lake.curated(name))
        write_parquet(rejected_rows(flagged[name], name), lake.rejected(name))
        datasets[name] = counts.as_dict()
        timings[name] = round(time.monotonic() - t0, 3)
    for df in flagged.values():
        df.unpersist()
    return {
        "datasets": datasets,
        "timings_seconds": {**timings, "total": round(time.monotonic() - started, 3)},
        "outputs": {
            "curated": {name: lake.curated(name) for name in DATASETS},
            "rejected": {name: lake.rejected(name) for name in DATASETS},
        },
    }


StepFunction = Callable[[SparkSession, Lake, str], dict]

STEP_FUNCTIONS: dict[str, StepFunction] = {
    "validate_raw": validate_raw,
}


def parse_args(step: str, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"{step}.py", description=f"rental_kpis step {step}")
    parser.add_argument("--lake-root", required=True, help="s3://bucket or a local lake folder")
    parser.add_argument("--run-id", default=None, help="groups the summaries of one run")
    return parser.parse_args(argv)


def run_step(spark: SparkSession, step: str, lake: Lake, run_id: str) -> dict:
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    body = STEP_FUNCTIONS[step](spark, lake, run_id)
    body = {
        "started_at": started_at,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **body,
    }
    return write_summary(spark, lake, run_id, step, body)


def main(step: str, argv: list[str] | None = None) -> int:
    """Entry point of ``emr_steps/<step>.py``: parse, run, exit non-zero on failure.

    Bad input prints one line (``error: …``) and exits 2; anything else escapes with its
    traceback so that EMR marks the step FAILED with the cause in its log.
    """
    from rental_kpis.spark import build_session

    args = parse_args(step, sys.argv[1:] if argv is None else argv)
    spark = build_session(f"rental_kpis.{step}")
    try:
        summary = run_step(spark, step, Lake(args.lake_root), args.run_id or new_run_id())
    except InputError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    finally:
        spark.stop()
    print(
        json.dumps(
            {
                "step": step,
                "status": summary["status"],
                "seconds": summary["timings_seconds"]["total"],
            }
        ),
        flush=True,
    )
    return 0
