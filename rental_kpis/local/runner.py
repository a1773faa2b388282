"""The local pipeline, the state machine's part: stages in order on one lake, under its lock,
each recorded in the run's record as it starts and ends.

The raw folder is checked and switched in first (``raw_zone``); consecutive Spark stages run as
one application (``spark_app``); crawl and queries run on DuckDB (``glue``, ``athena``).
SIGTERM, SIGINT and SIGHUP stop the run as an interruption: its processes are stopped, its
record says so, and the lock is released last.
"""

from __future__ import annotations

import contextlib
import importlib
import signal
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rental_kpis.errors import Interrupted
from rental_kpis.layout import Lake, check_lake_outside_raw, check_run_id, local_lake, new_run_id
from rental_kpis.local.lock import lake_lock
from rental_kpis.local.raw_zone import load_raw, recover_lake
from rental_kpis.local.results import RunResult, StageEvent, StepResult
from rental_kpis.local.run_ids import resumed_record
from rental_kpis.local.run_records import (
    INTERRUPTED,
    LOCAL_STAGES,
    completed_status,
    new_record,
    now,
    write_run_record,
)
from rental_kpis.local.run_tables import TABLES_KEY, tables_fingerprint
from rental_kpis.local.spark_app import run_session_steps, run_spark_steps
from rental_kpis.local.submit import check_master
from rental_kpis.project import build_library_zip
from rental_kpis.stages import SPARK_STAGES

if TYPE_CHECKING:  # pyspark is imported only where Spark runs
    from pyspark.sql import SparkSession

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# The modules of the local stages, imported while the Spark application runs.
LOCAL_STAGE_MODULES = {"crawl": "rental_kpis.local.glue", "queries": "rental_kpis.local.athena"}


def run_local(
    raw_dir: Path | None,
    lake_dir: str | Path,
    run_id: str | None = None,
    steps: Sequence[str] = LOCAL_STAGES,
    master: str = "local[*]",
    driver_memory: str = "2g",
    on_step: StageEvent | None = None,
    spark: SparkSession | None = None,
) -> RunResult:
    """Run ``steps`` in order on a local lake; ``raw_dir`` (if given) replaces the raw zone.

    With ``spark`` the Spark steps run in that session (``run_session_steps``) instead of a
    spark-submit application of their own.

    ``on_step(stage, event, result)`` is called with "start", then "done" or "failed".
    A failing stage stops the run (the error propagates) after its record says so; tables
    written by earlier successful runs stay complete, because every write is switched in
    only once it is whole. A ``run_id`` that already has a record continues it: its earlier
    stages stay in the record, and it goes on only as ``resumed_record`` allows; any other
    known run id is refused (RunIdTaken) before the lake changes. The lake is checked
    (``local_lake``, and outside ``raw_dir``'s dataset folders) before anything is made.
    When the Spark steps succeed, the record keeps the fingerprint of the tables they left
    (``tables_fingerprint``), which the run's later stages and its report check.
    """
    lake = local_lake(lake_dir)
    if raw_dir is not None:
        check_lake_outside_raw(lake, Path(raw_dir))
    check_master(master)
    result = RunResult(check_run_id(run_id) if run_id else new_run_id(), lake)
    run = _Run(result, master, driver_memory, on_step or (lambda *_: None), spark)
    with signals_interrupt(), lake_lock(lake, f"run {result.run_id}"):
        run.record = resumed_record(lake, result.run_id, steps, raw_dir) or new_record(
            lake, result.run_id, raw_dir
        )
        write_run_record(lake, run.record)
        try:
            run.stages(steps, raw_dir)
            run.record["status"] = completed_status(run.record)
        except BaseException as error:
            interrupted = run.record_error(error)
            if interrupted is None:
                raise
            raise interrupted from None
        finally:
            run.record["finished_at"] = now()
            write_run_record(lake, run.record)
    return result


@dataclass
class _Run:
    """One run of ``run_local``: its result, its record, and how its stages run."""

    result: RunResult
    master: str
    driver_memory: str
    notify: StageEvent
    spark: SparkSession | None
    record: dict = field(default_factory=dict)
    library_zip: Path = Path()

    def stages(self, steps: Sequence[str], raw_dir: Path | None) -> None:
        lake = self.result.lake
        recover_lake(lake)
        if raw_dir is not None:
            load_raw(Path(raw_dir), lake)
        with tempfile.TemporaryDirectory(prefix="rental_kpis_zip_") as tmp:
            # the zip is what spark-submit ships; a caller's session needs none
            self.library_zip = Path(tmp)
            if self.spark is None:
                self.library_zip = build_library_zip(Path(tmp))
                preload_local_stages(steps)
            for group in _stage_groups(steps):
                self.group(group)

    def group(self, group: list[str]) -> None:
        """Run one group of stages; a stage still running when it fails is recorded so."""
        try:
            self.run_group(group)
        except BaseException as error:
            outcome = INTERRUPTED if _is_interruption(error) else "failed"
            running = [s for s, f in self.record["stages"].items() if f["status"] == "running"]
            for step in running:
                self.on_stage(step, outcome, None)
            raise
        if group[0] in SPARK_STAGES:
            self.record[TABLES_KEY] = tables_fingerprint(self.result.lake)
            write_run_record(self.result.lake, self.record)

    def run_group(self, group: list[str]) -> None:
        lake, run_id = self.result.lake, self.result.run_id
        if group[0] in SPARK_STAGES and self.spark is not None:
            run_session_steps(self.spark, group, lake, run_id, self.on_stage)
        elif group[0] in SPARK_STAGES:
            run_spark_steps(
                group,
                lake,
                run_id,
                self.library_zip,
                self.master,
                self.driver_memory,
                self.on_stage,
            )
        else:
            (step,) = group
            self.on_stage(step, "start", None)
            started = time.monotonic()
            summary = local_stage(step, lake, run_id)
            self.on_stage(step, "done", StepResult(step, time.monotonic() - started, summary))

    def on_stage(self, step: str, event: str, done: StepResult | None) -> None:
        """Record a stage's start or end, then tell ``notify`` ("interrupted" as "failed")."""
        at = now("milliseconds")
        stages = self.record["stages"]
        if event == "start":
            stages[step] = {"status": "running", "started_at": at}
        elif event == "done" and done is not None:
            self.result.steps.append(done)
            stages[step].update(status="succeeded", seconds=round(done.seconds, 3), finished_at=at)
        else:
            stages[step].update(status=event, finished_at=at)
            event = "failed"
        write_run_record(self.result.lake, self.record)
        self.notify(step, event, done)

    def record_error(self, error: BaseException) -> Interrupted | None:
        """Record the run's failure; for an interruption, the Interrupted to raise instead."""
        if not _is_interruption(error):
            self.record["status"] = "failed"
            self.record["error"] = str(error) or type(error).__name__
            return None
        self.record["status"] = INTERRUPTED
        signum = error.signum if isinstance(error, Interrupted) else signal.SIGINT
        stages = [s for s, f in self.record["stages"].items() if f["status"] == INTERRUPTED]
        where = f" during {', '.join(stages)}" if stages else ""
        interrupted = Interrupted(signum, f"run {self.result.run_id}{where}")
        self.record["error"] = str(interrupted)
        return interrupted


def _is_interruption(error: BaseException) -> bool:
    return isinstance(error, (Interrupted, KeyboardInterrupt))


def _stage_groups(steps: Sequence[str]) -> list[list[str]]:
    """``steps`` cut into runs of consecutive Spark stages (one application each) and single
    local stages, in order."""
    groups: list[list[str]] = []
    for step in steps:
        if groups and step in SPARK_STAGES and groups[-1][-1] in SPARK_STAGES:
            groups[-1].append(step)
        else:
            groups.append([step])
    return groups


def local_stage(step: str, lake: Lake, run_id: str) -> dict:
    """Run crawl or queries on the lake; returns the stage's summary."""
    if step == "crawl":
        return crawl_stage(lake)
    if step == "queries":
        return queries_stage(lake, run_id)
    raise ValueError(f"stage {step!r} does not run locally")


def crawl_stage(lake: Lake) -> dict:
    from rental_kpis.local import glue

    report = glue.crawl(lake)
    return {
        "added": report.added,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "removed": report.removed,
        "skipped": report.skipped,
        "catalog_tables": report.tables,
    }


def queries_stage(lake: Lake, run_id: str) -> dict:
    from rental_kpis.local import athena

    results = athena.run_all(lake, run_id)
    return {
        "answers": {name: r.headline() for name, r in results.items()},
        "rows": {name: len(r.rows) for name, r in results.items()},
        "outputs": {name: r.output for name, r in results.items()},
    }


def preload_local_stages(steps: Sequence[str]) -> threading.Thread | None:
    """Import the modules of the local stages among ``steps`` in a thread, while the Spark
    application that runs before them keeps this process waiting on its output; crawl and
    queries then start at once. An import that fails here fails again, with its message,
    where the stage imports it."""
    modules = [LOCAL_STAGE_MODULES[s] for s in steps if s in LOCAL_STAGE_MODULES]
    if not modules or not any(s in SPARK_STAGES for s in steps):
        return None

    def load() -> None:
        for module in modules:
            with contextlib.suppress(Exception):
                importlib.import_module(module)

    thread = threading.Thread(target=load, name="rental_kpis-preload", daemon=True)
    thread.start()
    return thread


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """Turn SIGTERM, SIGINT and SIGHUP into ``Interrupted`` raised in the main thread.

    Python's default for SIGTERM is to die on the spot: no ``finally`` runs, the Spark child
    is orphaned and keeps writing, and the run record says "running" forever. Raised as an
    exception, the signal unwinds the run like any failure: the child is stopped, the record
    says interrupted, the lock is released last. Only the first signal raises, so that the
    clean-up it starts is not cut short by a second Ctrl-C.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def handler(signum: int, frame: object) -> None:
        nonlocal raised
        if not raised:
            raised = True
            raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
