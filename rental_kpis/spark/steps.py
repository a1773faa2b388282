"""Read → transform → write for each pipeline step; what ``emr_steps/*.py`` call.

Transforms live in ``validation`` and ``kpis``; this module is the edge where paths, the
session, the clock and the run summary are handled.
"""

from __future__ import annotations

import argparse
import json
import platform
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, cast

from pyspark.sql import Column, DataFrame, Observation, Row, SparkSession
from pyspark.sql import functions as F

from rental_kpis import __version__
from rental_kpis.errors import InputError
from rental_kpis.layout import DATASETS, DIMENSIONS, Lake, new_run_id, run_id_argument
from rental_kpis.spark import fs, kpis
from rental_kpis.spark.parallel import run_parallel
from rental_kpis.spark.readers import BYTES, SUSPECT, UTF8, read_header, read_raw
from rental_kpis.spark.schemas import curated_schema
from rental_kpis.spark.validation import (
    count_columns,
    counts_from,
    curated_rows,
    flag_dimension,
    flag_transactions,
    narrow_flagged,
    rejected_rows,
    shared_keys,
    valid_keys,
)


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
        # and every query on it returns no rows (issue 14, item 6).
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
    """The curated table as ``validate_raw`` writes it, read with its schema given: Spark
    would otherwise run a job to read the schema from the files' footers, one per table
    read (measured on the sample: five such jobs in the two KPI steps, issue 15)."""
    return spark.read.schema(curated_schema(dataset)).parquet(lake.curated(dataset))


def _kpi_step(
    spark: SparkSession,
    lake: Lake,
    build: Callable[[DataFrame], dict[str, DataFrame]],
) -> dict:
    """Build the step's tables from the curated rentals and write them.

    Each table reads the rentals' Parquet itself (only the columns it needs): measured at 1M
    rentals, caching them for the step's two tables cost more CPU than the second read saves
    (29.3 s against 22.9 s for the four tables).
    """
    started = time.monotonic()
    rentals = read_curated(spark, lake, "rental_transactions")
    with fs.switch_together(spark, lake.root) as together:  # the step's tables, together
        built = build(rentals).items()
        writes = {n: lambda df=df, n=n: write_table(df, lake, n, together) for n, df in built}
        tables = run_parallel(spark, writes)
    return {
        "tables": tables,
        "timings_seconds": {
            **{n: t["seconds"] for n, t in tables.items()},
            "total": round(time.monotonic() - started, 3),
        },
    }


def vehicle_location_metrics(spark: SparkSession, lake: Lake) -> dict:
    """SPEC §4: location_performance and vehicle_type_performance from curated/."""
    locations = read_curated(spark, lake, "locations")
    vehicles = read_curated(spark, lake, "vehicles")
    return _kpi_step(
        spark,
        lake,
        lambda rentals: {
            "location_performance": kpis.location_performance(rentals, locations),
            "vehicle_type_performance": kpis.vehicle_type_performance(rentals, vehicles),
        },
    )


def user_transaction_metrics(spark: SparkSession, lake: Lake) -> dict:
    """SPEC §4: user_metrics and daily_metrics (partitioned by year, month) from curated/."""
    users = read_curated(spark, lake, "users")
    return _kpi_step(
        spark,
        lake,
        lambda rentals: {
            "user_metrics": kpis.user_metrics(rentals, users),
            "daily_metrics": kpis.daily_metrics(rentals),
        },
    )


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


@dataclass
class Stored:
    """A dataset flagged, computed one time and stored (``stored_flagged``), and its row
    accounting; a work folder lives as long as the ``ExitStack`` given to ``store_dataset``."""

    frame: DataFrame
    counts: dict
    seconds: float


def _checkpoint_rdd(checkpoint: DataFrame) -> Any:  # a py4j handle: untyped
    """The RDD whose blocks hold a frame made by ``localCheckpoint``: the one its plan (a
    ``LogicalRDD``) reads. Classic PySpark's py4j handles, as on EMR; not Spark Connect."""
    return checkpoint._jdf.queryExecution().logical().rdd()


def release_checkpoint(checkpoint: DataFrame) -> None:
    """Free the blocks of a frame made by ``localCheckpoint`` now. ``DataFrame.unpersist``
    does not reach them: they belong to the RDD that the checkpoint's plan reads, which
    Spark's ContextCleaner would free only once the frame is garbage-collected in the
    driver's JVM, some time after the step (a review found six such RDDs left after one
    ``validate_raw``, discarded readings' included).

    Best effort, since it runs in ``finally`` blocks: when it fails (an application whose
    context has stopped, whose blocks are gone anyway), one line says so and the error that
    ended the step stays the one raised, not a ``NullPointerException`` from ``unpersist``.
    """
    try:
        _checkpoint_rdd(checkpoint).unpersist(False)
    except Exception as error:  # py4j's errors, and those of a stopped context
        lines = str(error).strip().splitlines() or [type(error).__name__]
        print(f"warning: a checkpoint's blocks were not freed: {lines[0]}", file=sys.stderr)


def checkpointed(df: DataFrame) -> tuple[DataFrame, int]:
    """``df`` computed into a local checkpoint, and its row count.

    What ``localCheckpoint()`` does eagerly, in two steps, so that the checkpoint is at hand
    before its job runs: if that job fails or is cancelled, the partitions it has stored
    are freed (``release_checkpoint``). The count is that job's own, so a caller that needs
    it (``_stored_keys``) runs no second job over the checkpoint. It is the DataFrame's
    count, a SQL execution, which hands the session's SQL settings (time zone, parser
    policy) to the tasks; a count of the RDD would run them with Spark's defaults.
    """
    checkpoint = df.localCheckpoint(eager=False)
    try:
        rows = checkpoint.count()
    except BaseException:
        release_checkpoint(checkpoint)
        raise
    return checkpoint, rows


@contextmanager
def local_checkpoint(df: DataFrame) -> Iterator[DataFrame]:
    """``df`` computed once into a local checkpoint (``checkpointed``), whose blocks are
    freed when the context ends (``release_checkpoint``)."""
    checkpoint, _ = checkpointed(df)
    try:
        yield checkpoint
    finally:
        release_checkpoint(checkpoint)


@contextmanager
def stored_flagged(
    flagged: DataFrame, lake: Lake, dataset: str, large: bool
) -> Iterator[DataFrame]:
    """The flagged frame computed one time and stored, for its counts, its two tables and
    (a dimension's) the rentals' key checks to read instead of parsing the CSV and running
    the validation plan again.

    A small dataset is stored in a local checkpoint (``localCheckpoint``: its rows in the
    executors' block stores, its lineage cut). A large one in a Parquet work folder, only
    the columns that are read later (``narrow_flagged``); the folder sits under the zone's
    ``_staging/``, which readers and crawlers skip, and is deleted when the context ends,
    whatever the step does; a killed application leaves it there, and the next local run
    discards it (``runner.recover_lake``). A local checkpoint's blocks are freed when the
    context ends too (``local_checkpoint``); it holds a dataset under
    ``SHARED_KEYS_FROM_BYTES`` at most.

    Measured (benchmarks/README.md, issue 15): at 10M rentals the work folder made rentals
    146.4 s -> 112.0 s against a flagged frame computed once per table; on the sample,
    `rental-kpis run` 16.3-16.5 s -> 14.8-16.1 s with the checkpoint, where columnar caching
    had cost more than the recomputation it saved. A local checkpoint does not survive the
    loss of the executor holding it (Spark's ``Dataset.localCheckpoint`` documentation:
    "unreliable and may compromise job completion"): a dimension's is read until the
    rentals are validated, so the whole step then fails and is retried, which for input
    under ``SHARED_KEYS_FROM_BYTES`` costs seconds.
    """
    if not large:
        with local_checkpoint(flagged) as stored:
            yield stored
        return
    spark = flagged.sparkSession
    work = fs.staging_uri(lake.curated(dataset), f"flagged.{secrets.token_hex(4)}")
    try:
        narrow_flagged(flagged, dataset).write.mode("overwrite").parquet(work)
        yield spark.read.parquet(work)
    finally:
        fs.delete(spark, work)


def _count_columns(flagged: DataFrame, dataset: str) -> list[Column]:
    """``count_columns``, plus the suspect records of a frame read with ``text="utf-8"``."""
    suspects = [F.count_if(F.col(SUSPECT)).alias("suspects")] if SUSPECT in flagged.columns else []
    return [*count_columns(dataset), *suspects]


def _counts(stored: DataFrame, dataset: str) -> dict | None:
    """The row accounting of a stored flagged frame (one small aggregation of its reason,
    copies and suspect columns), or None when it holds suspect records."""
    row = cast(Row, stored.agg(*_count_columns(stored, dataset)).first())  # no groups: one row
    metrics = row.asDict()
    return None if metrics.get("suspects") else counts_from(dataset, metrics).as_dict()


def write_stored(stored: Stored, lake: Lake, dataset: str, into: fs.Switch | None) -> float:
    """The two tables of a stored dataset, as two parallel jobs (``spark.parallel``) that
    neither parse the CSV nor plan the validation again; return the seconds it took."""
    started = time.monotonic()
    run_parallel(
        stored.frame.sparkSession,
        {
            "curated": lambda: write_parquet(
                curated_rows(stored.frame, dataset), lake.curated(dataset), into=into
            ),
            "rejected": lambda: write_parquet(
                rejected_rows(stored.frame, dataset), lake.rejected(dataset), into=into
            ),
        },
    )
    return time.monotonic() - started


# Shared keys up to this many are broadcast to the rows they mark: 8 MB of 64-bit hashes,
# under Spark's default broadcast threshold (10 MB). Any real input has a few thousand.
BROADCAST_SHARED_KEYS = 2**20


def _stored_keys(keys: DataFrame) -> tuple[DataFrame, DataFrame]:
    """The shared keys computed once into a local checkpoint, and hinted for broadcast when
    there are at most ``BROADCAST_SHARED_KEYS`` of them (shuffled to the rows otherwise);
    returned with the checkpoint itself, for ``release_checkpoint``.

    Not ``cache()``: Spark 3.5's adaptive execution makes the scan of a cached frame a query
    stage of its own, and then reuses no exchange above it, so the one shuffle of the raw
    records that both branches of ``validation.collapse_duplicates`` read would be computed,
    and the CSV read, once per branch. A checkpoint keeps the size estimated before it, not
    the real one, so the broadcast is decided here from the real count.
    """
    stored, count = checkpointed(keys)
    hinted = F.broadcast(stored) if count <= BROADCAST_SHARED_KEYS else stored
    return hinted, stored


# From this many bytes of raw files a dataset's shared keys are counted first, so that only
# their rows are aggregated (``validation.collapse_duplicates``); below it, the one job that
# pass costs is worth more than the aggregate of a few rows. A Spark setting, so tests and
# users can move it.
SHARED_KEYS_FROM_BYTES_CONF = "rental_kpis.validation.sharedKeysFromBytes"
SHARED_KEYS_FROM_BYTES = 16 * 2**20

FlagFunction = Callable[[DataFrame, "DataFrame | None"], DataFrame]


RENTALS = "rental_transactions"  # the dataset checked against the three dimensions
# Datasets are stored from several threads (``spark.parallel``) into one ExitStack.
_KEPT_LOCK = threading.Lock()


@dataclass
class Reading:
    """A dataset's raw records read one way (``text``: ``readers.read_raw``) and, when it is
    large, the hashes of its shared keys, counted and stored (``_stored_keys``) until
    ``release`` (once the flagged frame they mark is stored)."""

    raw: DataFrame
    shared: DataFrame | None
    seconds: float
    checkpoint: DataFrame | None = None  # the shared keys' local checkpoint

    def release(self) -> None:
        """Free the shared keys' blocks (``release_checkpoint``), if there are any."""
        if self.checkpoint is not None:
            release_checkpoint(self.checkpoint)
            self.checkpoint = None


def read_dataset(spark: SparkSession, lake: Lake, dataset: str, text: str) -> Reading:
    """Read a dataset and, from ``SHARED_KEYS_FROM_BYTES`` of raw files, count its shared
    keys (``_stored_keys``): the one pass over the records that needs no other dataset."""
    started = time.monotonic()
    uri = lake.raw(dataset)
    # A default given: a str, never None.
    threshold = cast(str, spark.conf.get(SHARED_KEYS_FROM_BYTES_CONF, str(SHARED_KEYS_FROM_BYTES)))
    raw = read_raw(spark, dataset, uri, text)
    if fs.size(spark, uri) < int(threshold):
        return Reading(raw, None, time.monotonic() - started)
    shared, checkpoint = _stored_keys(shared_keys(raw, dataset))
    return Reading(raw, shared, time.monotonic() - started, checkpoint)


def store_dataset(
    spark: SparkSession,
    lake: Lake,
    dataset: str,
    flag: FlagFunction,
    kept: ExitStack,
    first: Reading | None = None,
) -> Stored:
    """Read (or take ``first``, its reading with ``text="utf-8"``), flag, store
    (``stored_flagged``) and count one dataset; what is stored lives until ``kept`` closes.

    First with the CSV reader decoding UTF-8 (measured at 1M rentals: the byte-by-byte
    reading cost 6.7 s a pass against 3.6 s); a dataset in which a record holds U+FFFD,
    which may stand for an invalid byte, is read again byte by byte before anything of it
    is written, so the result is always that of ``read_raw(text="bytes")``.
    """
    started = time.monotonic()
    spent = 0.0  # on a reading made before this call
    for text in (UTF8, BYTES):
        if text == UTF8 and first is not None:
            reading, spent = first, first.seconds
        else:
            reading = read_dataset(spark, lake, dataset, text)
        large = reading.shared is not None
        with ExitStack() as attempt:
            try:
                stored = attempt.enter_context(
                    stored_flagged(flag(reading.raw, reading.shared), lake, dataset, large)
                )
            finally:  # stored (or failed): nothing reads the shared keys again
                reading.release()
            counts = _counts(stored, dataset)
            if counts is not None:
                with _KEPT_LOCK:
                    kept.enter_context(attempt.pop_all())
                return Stored(stored, counts, spent + time.monotonic() - started)
    raise AssertionError("a byte-by-byte read has no suspect records")


def validate_raw(spark: SparkSession, lake: Lake) -> dict:
    """SPEC §3: raw CSV → curated typed Parquet + rejected rows + the run summary.

    The three dimensions are stored and counted side by side (``spark.parallel``), and
    beside them the rentals are read and their shared keys counted, the one pass over them
    that needs no dimension. Then the dimensions' tables are written while the rentals are
    validated against their valid keys, read from the stored dimensions (a narrow column,
    broadcast), not a recomputation of them. Measured (benchmarks/README.md, issue 15): on
    the sample the rentals no longer wait for the dimensions' six writes; at 10M rentals
    their shared keys are counted while the dimensions' one-task reads leave a core idle.
    """
    started = time.monotonic()
    for name in DATASETS:  # every header first: bad input fails before any Spark job
        read_header(spark, name, lake.raw(name))
    with fs.switch_together(spark, lake.root) as together, ExitStack() as kept:

        def dimension(name: str) -> Callable[[], Stored]:
            flag = lambda raw, shared: flag_dimension(raw, name, shared)  # noqa: E731
            return lambda: store_dataset(spark, lake, name, flag, kept)

        def first_reading() -> Reading:
            reading = read_dataset(spark, lake, RENTALS, UTF8)
            with _KEPT_LOCK:  # freed when stored; here, for when a dimension fails
                kept.callback(reading.release)
            return reading

        done = run_parallel(
            spark, {**{name: dimension(name) for name in DIMENSIONS}, RENTALS: first_reading}
        )
        # The dimensions' tasks return a Stored, the rentals' one a Reading.
        stored: dict[str, Stored] = {name: cast(Stored, done[name]) for name in DIMENSIONS}
        keys = {name: valid_keys(stored[name].frame, name) for name in DIMENSIONS}

        def flag_rentals(raw: DataFrame, shared: DataFrame | None) -> DataFrame:
            return flag_transactions(
                raw,
                user_keys=keys["users"],
                vehicle_keys=keys["vehicles"],
                location_keys=keys["locations"],
                shared=shared,
            )

        def rentals() -> float:
            first = cast(Reading, done[RENTALS])
            stored[RENTALS] = store_dataset(spark, lake, RENTALS, flag_rentals, kept, first)
            return write_stored(stored[RENTALS], lake, RENTALS, together)

        def write(name: str) -> Callable[[], float]:
            return lambda: write_stored(stored[name], lake, name, together)

        written = run_parallel(
            spark, {**{name: write(name) for name in DIMENSIONS}, RENTALS: rentals}
        )
    timings = {name: round(stored[name].seconds + written[name], 3) for name in DATASETS}
    return {
        "datasets": {name: stored[name].counts for name in DATASETS},
        "timings_seconds": {
            **{name: timings[name] for name in DATASETS},
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
    parser = argparse.ArgumentParser(prog=f"{step}.py", description=f"rental_kpis step {step}")
    parser.add_argument("--lake-root", required=True, help="s3://bucket or a local lake folder")
    parser.add_argument("--run-id", type=run_id_argument, help="groups the summaries of one run")
    return parser.parse_args(argv)


def run_step(spark: SparkSession, step: str, lake: Lake, run_id: str) -> dict:
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
