"""The local runner: put raw files in the lake, then spark-submit the steps like EMR would.

The Spark steps run in ONE ``spark-submit`` application (``steps.main_app``: the step
functions in order, one session, one JVM start instead of three) with the library as a zip
(``--py-files``), never in-process, so a packaging fault shows up here, not on a cluster.
On EMR the same step functions stay three steps (``emr_steps/*.py``). The application
prints a progress line around each step; the runner turns them into the same per-stage
record, timings and logs (``runs/<run_id>/<step>.log``) that separate processes gave.
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

from rental_kpis.errors import LakeBusy, StepFailed
from rental_kpis.layout import Lake, new_run_id, raw_input_files
from rental_kpis.local.submit import start_spark_submit
from rental_kpis.project import EMR_STEPS_DIR, build_library_zip  # noqa: F401 (the EMR scripts)
from rental_kpis.spark.session import LOCAL_CONF
from rental_kpis.stages import SPARK_STAGES

# Below this much raw input a local run is mostly JIT compilation of Spark's generated code,
# not work on rows: measured on the 3.4 MB sample, the JVM's optimising compiler (C2) took
# about half the CPU of the run. With C1 only, the run's CPU halves (45-50 s -> 24-29 s) and
# the rows cost the same; at 1M rentals (160 MB) C1 code makes the tasks' CPU 1.8x and the
# totals even out, so larger inputs keep the default tiered compilation.
SMALL_INPUT_BYTES = 64 * 2**20

# The script the local run submits: like emr_steps/*.py, argument parsing and one call.
APP_SCRIPT_NAME = "rental_kpis_app.py"
APP_SCRIPT = '''"""The Spark steps of a local rental_kpis run, in order, in one session."""

import sys

from rental_kpis.spark.steps import main_app

if __name__ == "__main__":
    sys.exit(main_app())
'''


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


StageEvent = Callable[[str, str, "StepResult | None"], None]


def raw_bytes(lake: Lake) -> int | None:
    """Bytes of the lake's raw zone, or None for a remote lake (not listed from here)."""
    if lake.remote:
        return None
    return sum(p.stat().st_size for p in Path(lake.uri("raw")).rglob("*") if p.is_file())


def submit_conf(input_bytes: int | None) -> dict[str, str]:
    """Settings of the local Spark application for an input of ``input_bytes``."""
    if input_bytes is None or input_bytes >= SMALL_INPUT_BYTES:
        return {}
    java_options = LOCAL_CONF["spark.driver.extraJavaOptions"] + " -XX:TieredStopAtLevel=1"
    return {"spark.driver.extraJavaOptions": java_options}


def run_spark_steps(
    steps: Sequence[str],
    lake: Lake,
    run_id: str,
    library_zip: Path,
    master: str = "local[*]",
    driver_memory: str = "2g",
    on_step: StageEvent | None = None,
) -> list[StepResult]:
    """spark-submit ``steps`` as one application; raise StepFailed naming the failing step.

    Each step gets its own log, ``runs/<run_id>/<step>.log`` (the JVM start goes to the first
    step's, the shutdown to the last one's), and its wall time from the moment the previous
    step ended (the first: from the launch; the last: until the process exits), so the
    step times add up to the application's. ``on_step(step, event, result)`` is called with
    "start" and "done", as a step begins and ends.
    """
    from rental_kpis.spark.steps import parse_stage_mark  # pyspark only when Spark runs

    notify = on_step or (lambda *_: None)
    runs = Path(lake.uri("runs", run_id))
    runs.mkdir(parents=True, exist_ok=True)
    script = library_zip.parent / APP_SCRIPT_NAME
    script.write_text(APP_SCRIPT)
    args = ["--lake-root", lake.root, "--run-id", run_id, "--steps", ",".join(steps)]
    results: list[StepResult] = []
    logs = {step: (runs / f"{step}.log").open("w") for step in steps}
    outputs: dict[str, list[str]] = {step: [] for step in steps}
    current, started = steps[0], time.monotonic()
    notify(current, "start", None)

    def finish(step: str) -> None:
        summary_path = Path(lake.run_summary(run_id, step))
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        results.append(StepResult(step, time.monotonic() - started, summary))
        notify(step, "done", results[-1])

    try:
        conf = submit_conf(raw_bytes(lake))
        proc = start_spark_submit(
            script, args, [library_zip], master, conf, driver_memory, workdir=runs
        )
        assert proc.stdout is not None
        done: list[str] = []
        for line in proc.stdout:
            mark = parse_stage_mark(line.rstrip("\n"))
            if mark is None:
                logs[current].write(line)
                outputs[current].append(line)
                continue
            step, event = mark
            if event == "done" and step != steps[-1]:
                done.append(step)
            elif event == "start" and step != current and current in done:
                finish(current)
                current, started = step, time.monotonic()
                notify(current, "start", None)
        returncode = proc.wait()
    finally:
        for handle in logs.values():
            handle.close()
    if returncode != 0:
        detail = failure_detail("".join(outputs[current]))
        raise StepFailed(current, returncode, detail, str(runs / f"{current}.log"))
    finish(current)
    return results


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
    root.mkdir(parents=True, exist_ok=True)
    handle = (root / LOCK_FILE).open("a+")
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


def run_local(
    raw_dir: Path | None,
    lake_dir: Path,
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
    only once it is whole.
    """
    lake = Lake(str(lake_dir))
    result = RunResult(run_id or new_run_id(), lake)
    notify = on_step or (lambda *_: None)
    record = {
        "run_id": result.run_id,
        "status": "running",
        "started_at": _now(),
        "finished_at": None,
        "raw": str(raw_dir) if raw_dir else None,
        "lake": lake.root,
        "stages": {},
        "error": None,
    }
    with lake_lock(lake, result.run_id):
        write_run_record(lake, record)
        try:
            if raw_dir is not None:
                load_raw(Path(raw_dir), lake)
            with tempfile.TemporaryDirectory(prefix="rental_kpis_zip_") as tmp:
                library_zip = build_library_zip(Path(tmp))

                def on_stage(step: str, event: str, done: StepResult | None) -> None:
                    now = _now("milliseconds")
                    if event == "start":
                        record["stages"][step] = {"status": "running", "started_at": now}
                    elif event == "done" and done is not None:
                        result.steps.append(done)
                        record["stages"][step].update(
                            status="succeeded", seconds=round(done.seconds, 3), finished_at=now
                        )
                    else:
                        record["stages"][step].update(status="failed", finished_at=now)
                    write_run_record(lake, record)
                    notify(step, event, done)

                for group in _stage_groups(steps):
                    try:
                        _run_group(
                            group, lake, result.run_id, library_zip, master, driver_memory, on_stage
                        )
                    except BaseException:
                        running = [
                            s for s, f in record["stages"].items() if f["status"] == "running"
                        ]
                        for step in running:
                            on_stage(step, "failed", None)
                        raise
            record["status"] = "succeeded"
        except BaseException as error:
            record["status"] = "failed"
            record["error"] = str(error) or type(error).__name__
            raise
        finally:
            record["finished_at"] = _now()
            write_run_record(lake, record)
    return result


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


def _run_group(
    group: list[str],
    lake: Lake,
    run_id: str,
    library_zip: Path,
    master: str,
    driver_memory: str,
    on_stage: StageEvent,
) -> None:
    if group[0] in SPARK_STAGES:
        run_spark_steps(group, lake, run_id, library_zip, master, driver_memory, on_stage)
        return
    (step,) = group
    on_stage(step, "start", None)
    started = time.monotonic()
    if step == "crawl":
        summary = crawl_stage(lake)
    elif step == "queries":
        summary = queries_stage(lake, run_id)
    else:
        raise ValueError(f"stage {step!r} does not run locally")
    on_stage(step, "done", StepResult(step, time.monotonic() - started, summary))
