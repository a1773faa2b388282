"""How the Spark steps run fast: every execution device, behind one interface.

``validation`` and ``kpis`` say what is computed (SPEC §3, §4); this module decides how Spark
computes it. What it guarantees, whichever devices it uses and whatever the input's size:

- **Exact.** ``Validation.flag(dataset, reasons)`` returns the rows and counts that
  ``reasons(validation.collapse_duplicates(readers.read_raw(spark, dataset, uri), dataset))``
  gives, the plain SPEC functions on the byte-exact reading; ``broadcast`` changes a plan,
  never a result.
- **Released.** What a ``Validation`` stores (local checkpoints' blocks, Parquet work folders)
  lives until it closes, and no longer, on success or error. Freeing is best effort: a
  failure to free is one warning line on stderr, never a replacement of the step's error.
- **Sequential.** ``run_parallel`` runs independent tasks in driver threads and returns what
  running them one after the other returns: each result by name, or the exception of the
  first failing task in the given order; an interrupted wait first cancels the session's jobs.

The devices, one function each (``benchmarks/README.md``, "Execution devices", measures each):

1. ``run_parallel``: independent jobs of a step from driver threads, so that one job's
   planning or one-task read leaves no core idle (Spark schedules the jobs of several threads
   of one application at once).
2. ``READINGS``: a dataset is read with the CSV reader decoding UTF-8 first; one holding a
   record with U+FFFD (which may stand for an invalid byte) is read again byte by byte before
   anything of it is stored.
3. ``_store_small`` and ``_store_large``: a flagged dataset is computed once, for its counts,
   its two tables and a dimension's valid keys: into a local checkpoint (``release_checkpoint``
   frees its blocks) when small, into a narrow Parquet work folder when large.
4. ``_shared_keys_first`` and ``_one_exchange``: for a large dataset, the hashes of the keys
   that more than one raw row holds are counted first and stored, so that only their rows
   go through the exact de-duplication; every row comes from one shuffle by key.
5. ``_by_key``: a small dataset is shuffled once by key, and the exact aggregate and the count
   per key run inside that partitioning.
6. ``broadcast``: the dimensions' valid keys are broadcast to the rentals.

A dataset is *large* from ``LARGE_FROM_BYTES`` of raw files (Spark setting ``LARGE_CONF``).
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, TypeVar, cast

from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from rental_kpis.layout import Lake
from rental_kpis.spark import fs
from rental_kpis.spark.readers import BYTES, UTF8, read_raw
from rental_kpis.spark.schemas import DIMENSION_KEYS, REJECTION_REASON, column_names
from rental_kpis.spark.validation import (
    COPIES,
    CORRUPT_RECORD,
    ELIGIBLE,
    KEY,
    KEY_ROWS,
    SUSPECT,
    collapse_keyed,
    count_columns,
    counts_from,
    parsed_key,
    typed,
    valid_keys,
    with_dimension_reason,
    with_row_key,
    with_transaction_reason,
)

T = TypeVar("T")
Reasons = Callable[[DataFrame], DataFrame]  # collapsed rows -> flagged rows (validation)

LARGE_CONF = "rental_kpis.validation.sharedKeysFromBytes"
LARGE_FROM_BYTES = 16 * 2**20
READINGS = (UTF8, BYTES)  # readers.read_raw's ways, in the order they are tried
KEY_HASH = "_key_hash"
_SHARED = "_shared"
_PARTITION = "_partition"
_CANCEL_EVERY_SECONDS = 0.2  # how often an interrupted wait cancels the session's jobs
_POLL_SECONDS = 0.5  # how often the waiting thread returns to the interpreter


# ---------------------------------------------------------------- 1. side by side


def run_parallel(spark: SparkSession, tasks: Mapping[str, Callable[[], T]]) -> dict[str, T]:
    """Run independent ``tasks`` (name -> function of no argument) in driver threads.

    Returns name -> result, in the given order. Raises the exception of the first failing
    task in the given order, once every task has ended. A single task runs in the calling
    thread. When the wait is interrupted (Ctrl-C, or SIGTERM turned into an exception), the
    session's jobs are cancelled until every task has stopped, then the interruption goes on.
    """
    names = list(tasks)
    if len(names) <= 1:
        return {name: tasks[name]() for name in names}
    with ThreadPoolExecutor(len(names), thread_name_prefix="rental_kpis") as pool:
        futures = {name: pool.submit(tasks[name]) for name in names}
        try:  # waits with a timeout, so that the main thread sees an interruption at once
            while wait(futures.values(), timeout=_POLL_SECONDS).not_done:
                pass
        except BaseException:
            _cancel_until_stopped(spark, list(futures.values()))
            raise
    for name in names:
        error = futures[name].exception()
        if error is not None:
            raise error
    return {name: futures[name].result() for name in names}


def _cancel_until_stopped(spark: SparkSession, futures: list[Future]) -> None:
    while True:
        spark.sparkContext.cancelAllJobs()
        if not wait(futures, timeout=_CANCEL_EVERY_SECONDS).not_done:
            return


# ---------------------------------------------------------------- 3. stored once


def _checkpoint_rdd(checkpoint: DataFrame) -> Any:  # a py4j handle: untyped
    """The RDD holding the blocks of a frame made by ``localCheckpoint`` (classic PySpark's
    py4j handles, as on EMR; not Spark Connect)."""
    return checkpoint._jdf.queryExecution().logical().rdd()


def release_checkpoint(checkpoint: DataFrame) -> None:
    """Free the blocks of a frame made by ``localCheckpoint`` now, best effort.

    ``DataFrame.unpersist`` does not reach them, and Spark's ContextCleaner frees them only
    once the frame is garbage-collected in the driver's JVM. When freeing fails (a stopped
    context), one warning line on stderr; nothing is raised.
    """
    try:
        _checkpoint_rdd(checkpoint).unpersist(False)
    except Exception as error:  # py4j's errors, and those of a stopped context
        lines = str(error).strip().splitlines() or [type(error).__name__]
        print(f"warning: a checkpoint's blocks were not freed: {lines[0]}", file=sys.stderr)


def checkpointed(df: DataFrame) -> tuple[DataFrame, int]:
    """``df`` computed into a local checkpoint, and its row count (that job's own).

    The count is the DataFrame's, a SQL execution, so the tasks see the session's SQL
    settings (time zone, parser policy). Raises the job's error when it fails, after
    freeing the blocks it had stored.
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
    """``df`` computed once into a local checkpoint, whose blocks are freed on exit."""
    checkpoint, _ = checkpointed(df)
    try:
        yield checkpoint
    finally:
        release_checkpoint(checkpoint)


def narrow_flagged(flagged: DataFrame, dataset: str) -> DataFrame:
    """What ``curated_rows``, ``rejected_rows`` and the counts read of a flagged frame: typed
    values of valid rows, raw strings and raw line of rejected ones, reason, copies, suspect."""
    valid = F.col(REJECTION_REASON).isNull()
    names = column_names(dataset)
    return flagged.select(
        *(F.when(~valid, F.col(name)).alias(name) for name in names),
        F.when(~valid, F.col(CORRUPT_RECORD)).alias(CORRUPT_RECORD),
        *(F.when(valid, F.col(typed(name))).alias(typed(name)) for name in names),
        REJECTION_REASON,
        COPIES,
        *([SUSPECT] if SUSPECT in flagged.columns else []),
    )


def _store_small(flagged: DataFrame, dataset: str, lake: Lake) -> AbstractContextManager[DataFrame]:
    """Store a small flagged frame once: a local checkpoint (lost with its executor, so the
    step fails and is retried, at a cost of seconds for input this small)."""
    return local_checkpoint(flagged)


@contextmanager
def _store_large(flagged: DataFrame, dataset: str, lake: Lake) -> Iterator[DataFrame]:
    """Store a large flagged frame once: its narrow columns in a Parquet work folder under
    the curated zone's ``_staging/`` (which readers and crawlers skip), deleted on exit."""
    spark = flagged.sparkSession
    work = fs.staging_uri(lake.curated(dataset), f"flagged.{secrets.token_hex(4)}")
    try:
        narrow_flagged(flagged, dataset).write.mode("overwrite").parquet(work)
        yield spark.read.parquet(work)
    finally:
        fs.delete(spark, work)


# ---------------------------------------------------------------- 4, 5. de-duplication


def key_hash(key: Column) -> Column:
    """A 64-bit hash of a parsed key: what ``shared_keys`` counts and marks rows by."""
    return F.xxhash64(key)


def shared_keys(raw: DataFrame, dataset: str) -> DataFrame:
    """The ``key_hash`` (column ``_key_hash``) of every parsed key that more than one raw row
    holds. A collision only sends more rows through the exact aggregate: never wrong."""
    return (
        raw.select(parsed_key(dataset).alias(KEY))
        .where(F.col(KEY).isNotNull())
        .select(key_hash(F.col(KEY)).alias(KEY_HASH))
        .repartition(KEY_HASH)  # counted on every core, even after a one-task read
        .groupBy(KEY_HASH)
        .agg(F.count(F.lit(1)).alias("_rows"))
        .where(F.col("_rows") > 1)
        .select(KEY_HASH)
    )


def _shared_keys_first(raw: DataFrame, dataset: str) -> tuple[DataFrame | None, Any]:
    """A large dataset's ``shared_keys`` in a local checkpoint, returned twice: to join (how,
    Spark's adaptive execution decides from their real size) and to free. Not ``cache()``:
    Spark 3.5's adaptive execution then reuses no exchange above it."""
    stored, _ = checkpointed(shared_keys(raw, dataset))
    return stored, stored


def _by_key(keyed: DataFrame) -> DataFrame:
    """Rows shuffled once by key, so the exact aggregate and the window per key need no other."""
    return keyed.repartition(KEY)


def _one_exchange(spread: DataFrame) -> tuple[DataFrame, Column]:
    """``spread`` with a condition that is always true and that Spark cannot know to be (the
    partition id): filters on it stay above the shuffle, so both branches read one exchange
    and the records are read once."""
    return spread.withColumn(_PARTITION, F.spark_partition_id()), F.col(_PARTITION) >= 0


def collapse(raw: DataFrame, dataset: str, shared: DataFrame | None) -> DataFrame:
    """The rows of ``validation.collapse_duplicates(raw, dataset)``, computed faster.

    Without ``shared``, every row goes through the exact aggregate (``_by_key``). With the
    dataset's ``shared_keys``, only the rows of those hashes and of no key do; any other row
    is alone with its key: one copy, and one row of its key when eligible.
    """
    keyed = with_row_key(raw, dataset)
    if shared is None:
        return collapse_keyed(_by_key(keyed))
    columns = list(raw.columns)
    marks = shared.select(KEY_HASH, F.lit(True).alias(_SHARED))
    marked = keyed.withColumn(KEY_HASH, key_hash(F.col(KEY))).join(marks, KEY_HASH, "left")
    alone = F.col(_SHARED).isNull() & F.col(KEY).isNotNull()
    spread, kept = _one_exchange(marked.repartition(KEY))
    single = spread.where(kept & alone).select(
        *columns,
        KEY,
        F.lit(1).cast("long").alias(COPIES),
        F.when(F.col(ELIGIBLE), 1).otherwise(0).cast("long").alias(KEY_ROWS),
    )
    many = spread.where(kept & ~alone).select(*columns, KEY, ELIGIBLE)
    return single.unionByName(collapse_keyed(many))


# ---------------------------------------------------------------- 7. broadcast keys


def broadcast(keys: DataFrame) -> DataFrame:
    """``keys`` hinted for broadcast to the rows checked against them (no shuffle of those)."""
    return F.broadcast(keys)


# ---------------------------------------------------------------- a step's datasets


@dataclass(frozen=True)
class Flagged:
    """A flagged dataset, stored (``frame``), with its row accounting and its seconds."""

    frame: DataFrame
    counts: dict
    seconds: float


@dataclass
class Reading:
    """A dataset's raw records read one way (``text``), and a large one's shared keys."""

    raw: DataFrame
    text: str
    large: bool
    shared: DataFrame | None
    checkpoint: DataFrame | None = None

    def release(self) -> None:
        """Free the shared keys' checkpoint, if any (again: no effect)."""
        if self.checkpoint is not None:
            release_checkpoint(self.checkpoint)
            self.checkpoint = None


def _counts(stored: DataFrame, dataset: str) -> dict | None:
    """The row accounting of a stored flagged frame, or None when it holds a suspect record."""
    suspects = [F.count_if(F.col(SUSPECT)).alias("suspects")] if SUSPECT in stored.columns else []
    row = cast(Row, stored.agg(*count_columns(dataset), *suspects).first())  # always one row
    metrics = row.asDict()
    return None if metrics.get("suspects") else counts_from(dataset, metrics).as_dict()


class Validation:
    """The raw datasets of one lake, flagged, stored and counted; all released on close.

    Use as a context manager: ``with Validation(spark, lake) as run: run.flag(...)``.
    Thread-safe: datasets may be flagged from ``run_parallel``'s threads.
    """

    def __init__(self, spark: SparkSession, lake: Lake) -> None:
        self.spark, self.lake = spark, lake
        self._kept = ExitStack()
        self._lock = threading.Lock()

    def __enter__(self) -> Validation:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._kept.close()

    def _keep(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._kept.callback(callback)

    def read(self, dataset: str, text: str) -> Reading:
        """Read ``dataset`` from the lake's raw zone (``readers.read_raw(..., text)``) and,
        when it is large, count its shared keys (freed on ``release`` or on close)."""
        uri = self.lake.raw(dataset)
        threshold = cast(str, self.spark.conf.get(LARGE_CONF, str(LARGE_FROM_BYTES)))
        large = fs.size(self.spark, uri) >= int(threshold)
        raw = read_raw(self.spark, dataset, uri, text)
        shared, checkpoint = _shared_keys_first(raw, dataset) if large else (None, None)
        reading = Reading(raw, text, large, shared, checkpoint)
        self._keep(reading.release)
        return reading

    def flag(self, dataset: str, reasons: Reasons) -> Flagged:
        """Read, collapse, flag with ``reasons``, store and count one dataset.

        Parameters: ``reasons``, collapsed rows -> flagged rows (``validation.
        with_dimension_reason`` or ``with_transaction_reason``, with their arguments bound).
        Returns the stored frame (kept until close) and its counts. Raises what the reads
        and jobs raise (``InputError`` for bad input).
        """
        started = time.monotonic()
        for text in READINGS:
            reading = self.read(dataset, text)
            with ExitStack() as attempt:
                store = _store_large if reading.large else _store_small
                try:
                    flagged = reasons(collapse(reading.raw, dataset, reading.shared))
                    stored = attempt.enter_context(store(flagged, dataset, self.lake))
                finally:  # stored, or failed: nothing reads the shared keys again
                    reading.release()
                counts = _counts(stored, dataset)
                if counts is not None:
                    with self._lock:
                        self._kept.enter_context(attempt.pop_all())
                    return Flagged(stored, counts, time.monotonic() - started)
        raise AssertionError("a byte-by-byte reading has no suspect record")

    def flag_each(self, reasons: Mapping[str, Reasons]) -> dict[str, Flagged]:
        """``flag`` each dataset of ``reasons`` side by side (``run_parallel``). Returns
        dataset -> ``Flagged``."""
        tasks = {name: partial(self.flag, name, reasons[name]) for name in reasons}
        return run_parallel(self.spark, tasks)


def flag_in_memory(raw: dict[str, DataFrame], shared_keys_first: bool) -> dict[str, DataFrame]:
    """``validation.flag_all(raw)``'s frames as ``Validation`` computes them, each computed
    once into a local checkpoint (freed when Spark's ContextCleaner collects it): for tests
    and exploring, where each frame is counted and collected many times.

    ``shared_keys_first``: collapse every dataset as a large one (``_shared_keys_first``).
    """
    flagged = {
        name: _in_memory(
            raw[name], name, partial(with_dimension_reason, dataset=name), shared_keys_first
        )
        for name in DIMENSION_KEYS
    }
    keys = {name: broadcast(valid_keys(flagged[name], name)) for name in DIMENSION_KEYS}
    reasons = partial(
        with_transaction_reason,
        user_keys=keys["users"],
        vehicle_keys=keys["vehicles"],
        location_keys=keys["locations"],
    )
    rentals = "rental_transactions"
    flagged[rentals] = _in_memory(raw[rentals], rentals, reasons, shared_keys_first)
    return flagged


def _in_memory(
    raw: DataFrame, dataset: str, reasons: Reasons, shared_keys_first: bool
) -> DataFrame:
    shared = _shared_keys_first(raw, dataset)[0] if shared_keys_first else None
    return checkpointed(reasons(collapse(raw, dataset, shared)))[0]
