"""The local runner: put raw files in the lake, then spark-submit each step like EMR would.

Steps run as separate ``spark-submit`` processes of ``emr_steps/*.py`` with the library as a
zip (``--py-files``), never in-process, so a packaging fault shows up here, not on a cluster.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from rental_kpis.errors import LakeBusy, LakeUnusable, StepFailed, os_error_text
from rental_kpis.layout import Lake, check_run_id, local_lake, new_run_id, raw_input_files
from rental_kpis.local.submit import spark_submit
from rental_kpis.project import EMR_STEPS_DIR, build_library_zip
from rental_kpis.stages import SPARK_STAGES


def load_raw(raw_dir: Path, lake: Lake) -> dict[str, int]:
    """Replace the lake's raw zone with the CSV files of ``raw_dir/<dataset>/``.

    Returns the number of files per dataset. A dataset with no CSV file is an error naming
    the folder, before any Spark process starts.
    """
    copied: dict[str, int] = {}
    for dataset, files in raw_input_files(raw_dir).items():
        target = Path(lake.raw(dataset))
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for path in files:
            shutil.copy2(path, target / path.name)
        copied[dataset] = len(files)
    return copied


def failure_detail(output: str) -> str:
    """The one line that says why a step failed.

    Our own ``error:`` line first (bad input); else the first JVM root cause that is not a
    wrapper ("Caused by: …ChecksumException: … file …"); else the last exception line.
    """
    lines = output.splitlines()
    for line in lines:
        if line.startswith("error: "):
            return line[len("error: ") :]
    causes = [
        ln[len("Caused by: ") :].strip()
        for ln in lines
        if ln.startswith("Caused by: ") and "Exception thrown in awaitResult" not in ln
    ]
    if causes:
        return causes[0]
    exceptions = [ln.strip() for ln in lines if re.match(r"^\s*[\w.]+(Error|Exception)\b", ln)]
    return exceptions[-1] if exceptions else (lines[-1] if lines else "no output")


@dataclass
class StepResult:
    step: str
    seconds: float
    summary: dict = field(default_factory=dict)


@dataclass
class RunResult:
    run_id: str
    lake: Lake
    steps: list[StepResult] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    def summary_of(self, step: str) -> dict:
        return next((s.summary for s in self.steps if s.step == step), {})


def run_spark_step(
    step: str,
    lake: Lake,
    run_id: str,
    library_zip: Path,
    master: str = "local[*]",
    driver_memory: str = "2g",
) -> StepResult:
    """spark-submit ``emr_steps/<step>.py`` against ``lake``; raise StepFailed with the cause."""
    log = Path(lake.uri("runs", run_id, f"{step}.log"))
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    result = spark_submit(
        EMR_STEPS_DIR / f"{step}.py",
        ["--lake-root", lake.root, "--run-id", run_id],
        py_files=[library_zip],
        master=master,
        driver_memory=driver_memory,
        log_path=log,
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise StepFailed(step, result.returncode, failure_detail(result.output), str(log))
    summary_path = Path(lake.run_summary(run_id, step))
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return StepResult(step, seconds, summary)


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


# ---------------------------------------------------------------- lock and run records

LOCK_FILE = ".rental_kpis.lock"


@contextmanager
def lake_lock(lake: Lake, run_id: str) -> Iterator[None]:
    """Hold the lake for one run; a second run at the same time is refused, not interleaved.

    An OS lock (flock) is released by the kernel if the process dies, so a crash never
    leaves a stale lock behind.
    """
    root = Path(lake.root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        handle = (root / LOCK_FILE).open("a+")
    except OSError as error:  # read-only, permission denied: the run's first write says so
        raise LakeUnusable(f"lake {root} cannot be written: {os_error_text(error)}") from error
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another run"
        handle.close()
        raise LakeBusy(f"lake {root} is in use by {holder}; wait for it to finish") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"run {run_id} (pid {os.getpid()}, started {_now()})")
    handle.flush()
    try:
        yield
    finally:
        handle.seek(0)
        handle.truncate()
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _now(timespec: str = "seconds") -> str:
    return datetime.now(timezone.utc).isoformat(timespec=timespec)


def write_run_record(lake: Lake, record: dict) -> None:
    path = Path(lake.uri("runs", record["run_id"], "run.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


def run_history(lake: Lake, limit: int = 10) -> list[dict]:
    """The last runs on this lake, newest first, as their ``runs/<run_id>/run.json`` say."""
    records = []
    for path in Path(lake.uri("runs")).glob("*/run.json"):
        try:
            records.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            continue
    records.sort(key=lambda r: r.get("started_at", ""), reverse=True)
    return records[:limit]


# ---------------------------------------------------------------- the run

LOCAL_STAGES: tuple[str, ...] = (*SPARK_STAGES, "crawl", "queries")
StageCallback = Callable[[str, str, "StepResult | None"], None]


PARTIAL = "partial"


def completed_status(record: dict) -> str:
    """The outcome of a run whose stages all ran without error: "succeeded" only when every
    stage of a whole run has succeeded; a run that ran some of them (sprint 2 runs the Spark
    steps, the orchestration notebook the rest) is "partial" until then, so ``status`` and
    "the newest succeeded run" never take it for a whole one."""
    stages = record.get("stages", {})
    done = all(stages.get(s, {}).get("status") == "succeeded" for s in LOCAL_STAGES)
    return "succeeded" if done else PARTIAL


def resumed_record(lake: Lake, run_id: str) -> dict | None:
    """The record of run ``run_id`` if it exists, reopened to run more of its stages: its
    stages so far are kept (a stage run again replaces its entry), its outcome is reset."""
    path = Path(lake.uri("runs", run_id, "run.json"))
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    record.update(status="running", finished_at=None, error=None)
    return record


def run_local(
    raw_dir: Path | None,
    lake_dir: str | Path,
    run_id: str | None = None,
    steps: Sequence[str] = LOCAL_STAGES,
    master: str = "local[*]",
    driver_memory: str = "2g",
    on_step: StageCallback | None = None,
) -> RunResult:
    """Run ``steps`` in order on a local lake; ``raw_dir`` (if given) replaces the raw zone.

    ``on_step(stage, event, result)`` is called with "start", then "done" or "failed".
    A failing stage stops the run (the error propagates) after its record says so; tables
    written by earlier successful runs stay complete, because every write is switched in
    only once it is whole. A ``run_id`` that already has a record continues it: its earlier
    stages stay in the record (``resumed_record``).
    """
    lake = local_lake(lake_dir)
    result = RunResult(check_run_id(run_id) if run_id else new_run_id(), lake)
    notify = on_step or (lambda *_: None)
    with lake_lock(lake, result.run_id):
        record = resumed_record(lake, result.run_id) or {
            "run_id": result.run_id,
            "status": "running",
            "started_at": _now(),
            "finished_at": None,
            "raw": str(raw_dir) if raw_dir else None,
            "lake": lake.root,
            "stages": {},
            "error": None,
        }
        write_run_record(lake, record)
        try:
            if raw_dir is not None:
                load_raw(Path(raw_dir), lake)
            with tempfile.TemporaryDirectory(prefix="rental_kpis_zip_") as tmp:
                library_zip = build_library_zip(Path(tmp))
                for step in steps:
                    notify(step, "start", None)
                    record["stages"][step] = {
                        "status": "running",
                        "started_at": _now("milliseconds"),
                    }
                    write_run_record(lake, record)
                    try:
                        step_result = _run_stage(
                            step, lake, result.run_id, library_zip, master, driver_memory
                        )
                    except BaseException:
                        record["stages"][step].update(
                            status="failed", finished_at=_now("milliseconds")
                        )
                        notify(step, "failed", None)
                        raise
                    result.steps.append(step_result)
                    record["stages"][step].update(
                        status="succeeded",
                        seconds=round(step_result.seconds, 3),
                        finished_at=_now("milliseconds"),
                    )
                    notify(step, "done", step_result)
            record["status"] = completed_status(record)
        except BaseException as error:
            record["status"] = "failed"
            record["error"] = str(error) or type(error).__name__
            raise
        finally:
            record["finished_at"] = _now()
            write_run_record(lake, record)
    return result


def _run_stage(
    step: str, lake: Lake, run_id: str, library_zip: Path, master: str, driver_memory: str
) -> StepResult:
    if step in SPARK_STAGES:
        return run_spark_step(step, lake, run_id, library_zip, master, driver_memory)
    started = time.monotonic()
    if step == "crawl":
        summary = crawl_stage(lake)
    elif step == "queries":
        summary = queries_stage(lake, run_id)
    else:
        raise ValueError(f"stage {step!r} does not run locally")
    return StepResult(step, time.monotonic() - started, summary)
