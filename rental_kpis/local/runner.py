"""The local runner: put raw files in the lake, then spark-submit the steps like EMR would.

The Spark steps run in ONE ``spark-submit`` application (``steps.main_app``: the step
functions in order, one session, one JVM start instead of three) with the library as a zip
(``--py-files``), so a packaging fault shows up here, not on a cluster. The one exception is
a caller that already has a session and passes it (the sprint 2 notebook, on a small raw
zone): its steps run in that session (``run_session_steps``), so a demo starts Spark once.
On EMR the same step functions stay three steps (``emr_steps/*.py``). The application
prints a progress line around each step; the runner turns them into the same per-stage
record, timings and logs (``runs/<run_id>/<step>.log``) that separate processes gave.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rental_kpis.errors import (
    Interrupted,
    LakeUnusable,
    RunIdTaken,
    RunRecordDamaged,
    StepFailed,
    TablesReplaced,
    os_error_text,
)
from rental_kpis.layout import (
    Lake,
    check_lake_outside_raw,
    check_run_id,
    local_lake,
    new_run_id,
    raw_input_files,
)
from rental_kpis.local.lock import (
    LOCK_FILE,
    holder_token,
    is_alive,
    lake_lock,
    lock_fd,
    process_start,
)
from rental_kpis.local.submit import check_master, start_spark_submit, stop_spark_submit
from rental_kpis.project import EMR_STEPS_DIR, build_library_zip  # noqa: F401 (the EMR scripts)
from rental_kpis.spark import switch
from rental_kpis.spark.session import quick_start_conf
from rental_kpis.spark.switch import STAGING_DIR
from rental_kpis.stages import SPARK_STAGES

if TYPE_CHECKING:  # pyspark is imported only where Spark runs
    from pyspark.sql import SparkSession

# Below this much raw input the local application starts with the JVM's quick compiler only
# (``session.QUICK_START_JAVA_OPTION``, where the measurements are).
SMALL_INPUT_BYTES = 64 * 2**20

# The script the local run submits: like emr_steps/*.py, argument parsing and one call.
APP_SCRIPT_NAME = "rental_kpis_app.py"
APP_SCRIPT = '''"""The Spark steps of a local rental_kpis run, in order, in one session."""

import sys

from rental_kpis.spark.steps import main_app

if __name__ == "__main__":
    sys.exit(main_app())
'''


def check_raw(raw_dir: Path) -> dict[str, list[Path]]:
    """Every input file of ``raw_dir``, checked as the validation step's reader will check it:
    every dataset has files, every file starts with a UTF-8 header line holding the dataset's
    SPEC columns, and the files of one dataset agree. Raises InputError naming the first
    problem; nothing is read beyond each file's first line."""
    from rental_kpis.errors import InputError, MissingColumnsError
    from rental_kpis.spark.readers import parse_header
    from rental_kpis.spark.schemas import missing_columns

    found = raw_input_files(raw_dir)
    for dataset, files in found.items():
        first: list[str] | None = None
        for path in files:
            header = parse_header(_header_line(dataset, path))
            duplicated = sorted({name for name in header if header.count(name) > 1})
            if duplicated:
                raise InputError(
                    f"dataset {dataset!r}: file {path} has the column "
                    f"{', '.join(duplicated)} more than once in its header"
                )
            if first is None:
                first = header
                missing = missing_columns(dataset, header)
                if missing:
                    raise MissingColumnsError(dataset, str(path), missing, header)
            elif header != first:
                raise InputError(
                    f"dataset {dataset!r}: file {path} has header {','.join(header)} "
                    f"but {files[0]} has {','.join(first)}; files of one dataset must agree"
                )
    return found


def _header_line(dataset: str, path: Path) -> str:
    from rental_kpis.errors import InputError

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            line = handle.readline(1 << 20)
    except (OSError, EOFError) as error:
        raise InputError(f"dataset {dataset!r}: cannot read {path}: {error}") from error
    if line.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\0" in line:
        raise InputError(f"dataset {dataset!r}: file {path} is not UTF-8 (UTF-16?)")
    try:
        return line.decode("utf-8").lstrip("\ufeff").rstrip("\r\n")
    except UnicodeDecodeError as error:
        raise InputError(
            f"dataset {dataset!r}: file {path} is not UTF-8 (byte {error.start} of its header)"
        ) from None


def load_raw(raw_dir: Path, lake: Lake) -> dict[str, int]:
    """Replace the lake's raw zone with the CSV files of ``raw_dir/<dataset>/``, all or nothing.

    Every file is checked first (``check_raw``): a missing dataset or a bad header changes
    nothing in the lake. The files are copied to ``raw/_staging/`` and the dataset folders
    switched in together (``switch.switch``: journal, then exchange), so a run killed while
    loading leaves the previous raw zone or the new one, never a mix.
    Returns the number of files per dataset. A lake inside a dataset folder of ``raw_dir`` is
    refused first (``check_lake_outside_raw``).
    """
    check_lake_outside_raw(lake, raw_dir)
    found = check_raw(raw_dir)
    with lake_lock(lake, "raw upload"):  # already held inside a run (re-entrant)
        recover_lake(lake)
        _switch_raw(found, lake)
    return {dataset: len(files) for dataset, files in found.items()}


def _switch_raw(found: dict[str, list[Path]], lake: Lake) -> None:
    root = _local_root(lake)
    staging_zone = Path(lake.uri("raw", STAGING_DIR))
    token = os.urandom(4).hex()
    pairs: list[tuple[str, str]] = []
    try:
        for dataset, files in found.items():
            staging = staging_zone / f"{dataset}.{token}"
            pairs.append((str(staging), lake.raw(dataset)))
            staging.mkdir(parents=True)
            for path in files:
                _copy_raw(path, staging)
    except BaseException:
        for made, _ in pairs:
            shutil.rmtree(made, ignore_errors=True)
        raise
    switch.switch(pairs, root)


def _copy_raw(path: Path, staging: Path) -> None:
    """Copy one raw file into its staging folder; a copy the OS refuses (a full disk, no
    permission) is LakeUnusable naming the file and the reason."""
    try:
        shutil.copy2(path, staging / path.name)
    except OSError as error:
        raise LakeUnusable(
            f"cannot copy {path} into the lake's raw zone ({staging}): {os_error_text(error)}; "
            "the raw zone is as it was"
        ) from error


def _local_root(lake: Lake) -> str:
    root = switch.local_path(lake.root)
    assert root is not None, f"not a local lake: {lake.root}"
    return root


def recover_lake(lake: Lake) -> list[str]:
    """Under the lake lock: finish any switch a killed run left half done, and delete the
    staging folders of writes that never got to switch."""
    root = _local_root(lake)
    finished = switch.recover(root)
    switch.discard_staging(root, ("raw", "curated", "rejected", "processed"))
    return finished


def failure_detail(output: str) -> str:
    """The one line that says why a step failed.

    Our own ``error:`` line first (bad input); else the first JVM root cause that is not a
    wrapper ("Caused by: …ChecksumException: … file …"); else the last exception line (the
    exception itself, without an ``Exception in thread "main"`` prefix); never a stack frame.
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
    exceptions = [m.group(1) for ln in lines if (m := EXCEPTION_LINE.match(ln))]
    return exceptions[-1] if exceptions else (lines[-1] if lines else "no output")


# "org.apache.spark.SparkException: …", "Exception in thread "main" java.lang.…Exception: …"
EXCEPTION_LINE = re.compile(
    r'^\s*(?:Exception in thread "[^"]*"\s+)?([\w.$]+(?:Error|Exception)\b.*)$'
)


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


def log_refused(step: str, path: Path, error: OSError) -> LakeUnusable:
    """The one-line error of a step log the OS would not write (a full disk, …)."""
    return LakeUnusable(f"step {step}: cannot write its log {path}: {os_error_text(error)}")


def write_log(step: str, path: Path, text: str, mode: str = "w") -> None:
    """Write (or, with mode "a", append) ``text`` to the log of ``step``; LakeUnusable when
    the OS refuses."""
    try:
        with path.open(mode) as log:
            log.write(text)
    except OSError as error:
        raise log_refused(step, path, error) from error


class StepLogs:
    """The open log of every step of one application, ``<folder>/<step>.log``; a write or a
    close the OS refuses (a full disk shows at either) is LakeUnusable naming the log."""

    def __init__(self, folder: Path, steps: Sequence[str]) -> None:
        self.paths = {step: folder / f"{step}.log" for step in steps}
        self.handles: dict[str, IO[str]] = {}
        for step, path in self.paths.items():
            try:
                self.handles[step] = path.open("w")
            except OSError as error:
                self.close()
                raise log_refused(step, path, error) from error

    def write(self, step: str, text: str) -> None:
        try:
            self.handles[step].write(text)
        except OSError as error:
            raise log_refused(step, self.paths[step], error) from error

    def close(self) -> None:
        """Close every log; the first one that cannot be written out is raised after all are
        closed."""
        refused: LakeUnusable | None = None
        for step, handle in self.handles.items():
            try:
                handle.close()
            except OSError as error:
                refused = refused or log_refused(step, self.paths[step], error)
        if refused is not None:
            raise refused


def raw_bytes(lake: Lake) -> int | None:
    """Bytes of the lake's raw zone, or None for a remote lake (not listed from here)."""
    if lake.remote:
        return None
    return sum(p.stat().st_size for p in Path(lake.uri("raw")).rglob("*") if p.is_file())


def submit_conf(input_bytes: int | None) -> dict[str, str]:
    """Settings of the local Spark application for an input of ``input_bytes``."""
    if input_bytes is None or input_bytes >= SMALL_INPUT_BYTES:
        return {}
    return quick_start_conf()


def run_spark_steps(
    steps: Sequence[str],
    lake: Lake,
    run_id: str,
    library_zip: Path,
    master: str = "local[*]",
    driver_memory: str = "2g",
    on_step: StageEvent | None = None,
    conf: Mapping[str, str] | None = None,
) -> list[StepResult]:
    """spark-submit ``steps`` as one application; raise StepFailed naming the failing step.

    Each step gets its own log, ``runs/<run_id>/<step>.log`` (the JVM start goes to the first
    step's, the shutdown to the last one's), and its wall time from the moment the previous
    step ended (the first: from the launch; the last: until the process exits), so the
    step times add up to the application's. ``on_step(step, event, result)`` is called with
    "start" and "done", as a step begins and ends. ``conf`` replaces the settings that
    ``submit_conf`` picks for the lake's input.
    """
    from rental_kpis.spark.steps import parse_stage_mark  # pyspark only when Spark runs

    notify = on_step or (lambda *_: None)
    runs = Path(lake.uri("runs", run_id))
    runs.mkdir(parents=True, exist_ok=True)
    script = library_zip.parent / APP_SCRIPT_NAME
    script.write_text(APP_SCRIPT)
    args = ["--lake-root", lake.root, "--run-id", run_id, "--steps", ",".join(steps)]
    results: list[StepResult] = []
    logs = StepLogs(runs, steps)
    outputs: dict[str, list[str]] = {step: [] for step in steps}
    current, started = steps[0], time.monotonic()
    notify(current, "start", None)

    def finish(step: str) -> None:
        summary_path = Path(lake.run_summary(run_id, step))
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        results.append(StepResult(step, time.monotonic() - started, summary))
        notify(step, "done", results[-1])

    fd = lock_fd(lake)
    proc = None
    try:
        conf = submit_conf(raw_bytes(lake)) if conf is None else conf
        proc = start_spark_submit(
            script,
            args,
            [library_zip],
            master,
            conf,
            driver_memory,
            workdir=runs,
            token=holder_token(lake),
            keep_fds=(fd,) if fd is not None else (),
        )
        assert proc.stdout is not None
        done: list[str] = []
        for line in proc.stdout:
            mark = parse_stage_mark(line.rstrip("\n"))
            if mark is None:
                logs.write(current, line)
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
        if proc is not None:  # interrupted or not: no process of the application survives
            stop_spark_submit(proc)
        logs.close()
    if returncode != 0:
        detail = failure_detail("".join(outputs[current]))
        raise StepFailed(current, returncode, detail, str(runs / f"{current}.log"))
    finish(current)
    return results


def run_session_steps(
    spark: SparkSession,
    steps: Sequence[str],
    lake: Lake,
    run_id: str,
    on_step: StageEvent | None = None,
) -> list[StepResult]:
    """Run ``steps`` in ``spark``, a session this process already has; raise StepFailed.

    The same ``steps.run_steps`` that the submitted application calls, timed, logged and
    blamed step by step like it, without starting a second JVM: the sprint 2 notebook hands
    over the session it taught with. Bad input fails with exit code 2, as under spark-submit;
    any other error is chained, so its traceback stays with the StepFailed.
    """
    from rental_kpis.errors import InputError
    from rental_kpis.spark.steps import parse_stage_mark, run_steps

    notify = on_step or (lambda *_: None)
    runs = Path(lake.uri("runs", run_id))
    runs.mkdir(parents=True, exist_ok=True)
    app = f"Spark application {spark.sparkContext.applicationId} ({spark.sparkContext.appName})"
    results: list[StepResult] = []
    current: dict[str, Any] = {"step": steps[0], "started": time.monotonic()}

    def announce(line: str) -> None:
        mark = parse_stage_mark(line)
        if mark is None:
            return
        step, event = mark
        if event == "start":
            current.update(step=step, started=time.monotonic())
            write_log(step, runs / f"{step}.log", f"ran in {app} of process {os.getpid()}\n")
            notify(step, "start", None)
        elif event == "done":
            summary = json.loads(Path(lake.run_summary(run_id, step)).read_text())
            results.append(StepResult(step, time.monotonic() - current["started"], summary))
            notify(step, "done", results[-1])

    try:
        run_steps(spark, list(steps), lake, run_id, announce)
    except (KeyboardInterrupt, Interrupted):
        # Ctrl-C or SIGTERM stops Python, not the JVM: without this the step's Spark jobs
        # would go on writing (into staging only, never switched in) in the caller's session.
        spark.sparkContext.cancelAllJobs()
        raise
    except Exception as error:
        step = str(current["step"])
        if isinstance(error, InputError):
            code, text = 2, f"error: {error}\n"
        else:  # the whole traceback (a JVM one included) to the log, its root cause to the line
            code, text = 1, "".join(traceback.format_exception(error))
        write_log(step, runs / f"{step}.log", text, mode="a")
        raise StepFailed(step, code, failure_detail(text), str(runs / f"{step}.log")) from error
    return results


# The modules of the local stages: pandas, pyarrow and DuckDB take about 0.6 s to import.
LOCAL_STAGE_MODULES = {"crawl": "rental_kpis.local.glue", "queries": "rental_kpis.local.athena"}


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

__all__ = ["LOCK_FILE", "lake_lock"]  # the lock lives in local/lock.py (crawl takes it too)

INTERRUPTED = "interrupted"
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


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


def _now(timespec: str = "seconds") -> str:
    return datetime.now(timezone.utc).isoformat(timespec=timespec)


RUN_RECORD = "run.json"


def run_record_path(lake: Lake, run_id: str) -> Path:
    return Path(lake.uri("runs", run_id, RUN_RECORD))


def write_run_record(lake: Lake, record: dict) -> None:
    """Write the record of its run whole or not at all: to a temporary file, then renamed
    over the previous one, so a reader never meets half a record and a write the OS refuses
    (a full disk) leaves the previous record as it was and is LakeUnusable naming the file."""
    path = run_record_path(lake, record["run_id"])
    temporary = path.with_name(f".{RUN_RECORD}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise LakeUnusable(
            f"run {record['run_id']} ({record.get('status')}): cannot write its record "
            f"{path}: {os_error_text(error)}"
        ) from error


def read_run_record(path: Path) -> dict:
    """The run record at ``path``; RunRecordDamaged when it is not one (truncated, not a JSON
    object, or without a run id, an outcome, a start time or its stages)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _damaged(path, f"not JSON: {error}") from None
    if not isinstance(record, dict):
        raise _damaged(path, f"a JSON {type(record).__name__}, not an object")
    for key, kind in (("run_id", str), ("status", str), ("started_at", str), ("stages", dict)):
        if not isinstance(record.get(key), kind):
            raise _damaged(path, f"{key} is {json.dumps(record.get(key))}")
    try:
        started_at(record)
    except ValueError:
        raise _damaged(path, f"started_at {record['started_at']!r} is not a time") from None
    if not all(isinstance(f, dict) and isinstance(f.get("status"), str)
               for f in record["stages"].values()):  # fmt: skip
        raise _damaged(path, "a stage without an outcome")
    return record


def _damaged(path: Path, why: str) -> RunRecordDamaged:
    return RunRecordDamaged(
        f"run record {path} is damaged ({why}); move it out of runs/ (or repair it) to see "
        "the other runs"
    )


def run_history(lake: Lake, limit: int = 10) -> list[dict]:
    """The last runs on this lake, newest first, as their ``runs/<run_id>/run.json`` say.

    A record still "running" whose process is gone (killed with SIGKILL, the machine
    stopped) is shown as interrupted: nothing is running it any more. A damaged record is
    RunRecordDamaged naming it: never skipped in silence.
    """
    records = [
        shown_record(read_run_record(path))
        for path in Path(lake.uri("runs")).glob(f"*/{RUN_RECORD}")
    ]
    records.sort(key=started_at, reverse=True)
    return records[:limit]


def started_at(record: dict) -> datetime:
    """When a run (or stage) record started; a time without a zone is taken as UTC."""
    when = datetime.fromisoformat(record["started_at"])
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def shown_record(record: dict) -> dict:
    """``record`` as it stands now: one still "running" whose process is gone is
    interrupted, and so are its running stages."""
    if record["status"] == "running" and not is_alive(
        record.get("pid", -1), record.get("pid_start")
    ):
        record["status"] = INTERRUPTED
        record["error"] = record.get("error") or "its process ended without an outcome"
        for facts in record["stages"].values():
            if facts["status"] == "running":
                facts["status"] = INTERRUPTED
    return record


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


def run_id_use(lake: Lake, run_id: str) -> str | None:
    """What already uses ``run_id`` on this lake (its runs/ folder, a query result kept under
    it), or None when the id is free."""
    if Path(lake.uri("runs", run_id)).exists():
        return f"{lake.uri('runs', run_id)} exists"
    kept = sorted(Path(lake.uri("query-results")).glob(f"*/{run_id}.csv"))
    return f"query results are kept under it ({kept[0]})" if kept else None


def check_run_id_unused(lake: Lake, run_id: str) -> None:
    """Refuse (RunIdTaken) a run id that this lake already knows: a finished run's record
    and results are never rewritten by a second run of the same id."""
    use = run_id_use(lake, run_id)
    if use is not None:
        raise _taken(lake, run_id, use)


def _taken(lake: Lake, run_id: str, why: str) -> RunIdTaken:
    return RunIdTaken(
        f"run id {run_id} is taken on lake {lake.root}: {why}; a run's record and results "
        "are kept as they are: choose another id (or none, for a new one)"
    )


def kept_query_result(lake: Lake, name: str, run_id: str) -> str | None:
    """The CSV that run ``run_id`` kept of query ``name``, or None when the id is unused (a
    new result is kept under it). A run that kept no result of the query is RunIdTaken."""
    from rental_kpis import queries

    queries.load(name)  # an unknown name first: UnknownQuery
    path = Path(lake.uri("query-results", name, f"{check_run_id(run_id)}.csv"))
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        check_run_id_unused(lake, run_id)
        return None
    except (OSError, UnicodeDecodeError) as error:
        why = os_error_text(error) if isinstance(error, OSError) else str(error)
        raise LakeUnusable(f"query {name}: cannot read the result kept in {path}: {why}") from None


def resumed_record(
    lake: Lake, run_id: str, steps: Sequence[str] = (), raw_dir: Path | None = None
) -> dict | None:
    """The record of run ``run_id`` if it exists, reopened to run more of its stages: its
    stages so far are kept, its outcome is reset. None when the id is unused.

    Only a partial run is continued, with stages it has not yet succeeded in, on the raw zone
    it started with (no ``raw_dir``), and on the tables its Spark steps wrote
    (``check_run_tables``); any other use of a known id is RunIdTaken (TablesReplaced for the
    tables), and the record stays as it was.
    """
    path = run_record_path(lake, run_id)
    if not path.exists():
        check_run_id_unused(lake, run_id)
        return None
    record = shown_record(read_run_record(path))
    if record["status"] != PARTIAL:
        raise _taken(lake, run_id, f"run {run_id} {record['status']}")
    done = [s for s in steps if record["stages"].get(s, {}).get("status") == "succeeded"]
    if done:
        raise _taken(lake, run_id, f"run {run_id} already ran {', '.join(done)}")
    if raw_dir is not None:
        raise _taken(
            lake, run_id, f"run {run_id} is partial and goes on only on the raw zone it began with"
        )
    recover_lake(lake)  # a switch a killed run left half done changes the tables: first
    check_run_tables(lake, record, steps)
    record.update(
        status="running",
        finished_at=None,
        error=None,
        pid=os.getpid(),
        pid_start=process_start(os.getpid()),
    )
    return record


# The zones the Spark steps write; their files are the tables a run's later stages read.
TABLE_ZONES: tuple[str, ...] = ("curated", "rejected", "processed")
TABLES_KEY = "tables"


def tables_fingerprint(lake: Lake) -> str:
    """What tells the tables in the lake now from any other write of them: a digest of the
    path and size of every file in the table zones (``TABLE_ZONES``), staging folders aside.
    Spark names the files it writes after the write job, so any new write of a table changes
    it; copying or moving the lake does not."""
    digest = hashlib.sha256()
    for zone in TABLE_ZONES:
        base = Path(lake.uri(zone))
        for path in sorted(base.rglob("*")):
            relative = path.relative_to(base)
            if relative.parts[0] != STAGING_DIR and path.is_file():
                digest.update(f"{zone}/{relative}\0{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def check_run_tables(lake: Lake, record: dict, what: Sequence[str] = ()) -> None:
    """Refuse (TablesReplaced) to go on with run ``record`` when the tables its Spark steps
    wrote are no longer the lake's: another run (or a step run by hand) wrote them since.
    ``what`` names what was about to use them (stages; empty: its report). A record that
    keeps no fingerprint (its Spark steps have not run) passes."""
    kept = record.get(TABLES_KEY)
    if kept is None or tables_fingerprint(lake) == kept:
        return
    run_id = record["run_id"]
    later = _later_spark_run(lake, record)
    by = f" by run {later['run_id']} (started {later['started_at']})" if later else ""
    raise TablesReplaced(
        f"run {run_id}: the tables its Spark steps wrote in {lake.root} were replaced{by}; "
        f"its {', '.join(what) or 'report'} would use another run's tables: run the whole "
        "pipeline again under a new run id"
    )


def check_tables_of(lake: Lake, run_id: str, what: Sequence[str] = ()) -> None:
    """``check_run_tables`` for run ``run_id`` by its record; a run without one passes."""
    path = run_record_path(lake, run_id)
    if path.exists():
        check_run_tables(lake, read_run_record(path), what)


def _later_spark_run(lake: Lake, record: dict) -> dict | None:
    """The newest other run whose Spark steps started after ``record``'s, if the records
    tell (a damaged one among them: None)."""
    since = max(_spark_starts(record), default=started_at(record))
    try:
        history = run_history(lake, limit=10**9)
    except RunRecordDamaged:
        return None
    later = [
        other
        for other in history
        if other["run_id"] != record["run_id"] and any(t > since for t in _spark_starts(other))
    ]
    return later[0] if later else None


def _spark_starts(record: dict) -> list[datetime]:
    """When each Spark stage of ``record`` started (stages without a readable time left out)."""
    starts = []
    for stage, facts in record["stages"].items():
        with contextlib.suppress(KeyError, TypeError, ValueError):
            if stage in SPARK_STAGES:
                starts.append(started_at(facts))
    return starts


def run_local(
    raw_dir: Path | None,
    lake_dir: str | Path,
    run_id: str | None = None,
    steps: Sequence[str] = LOCAL_STAGES,
    master: str = "local[*]",
    driver_memory: str = "2g",
    on_step: StageCallback | None = None,
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
    notify = on_step or (lambda *_: None)
    with signals_interrupt(), lake_lock(lake, f"run {result.run_id}"):
        record = resumed_record(lake, result.run_id, steps, raw_dir) or {
            "run_id": result.run_id,
            "status": "running",
            "started_at": _now(),
            "finished_at": None,
            "raw": str(raw_dir) if raw_dir else None,
            "lake": lake.root,
            "stages": {},
            "error": None,
            "pid": os.getpid(),
            "pid_start": process_start(os.getpid()),
        }
        write_run_record(lake, record)
        try:
            recover_lake(lake)
            if raw_dir is not None:
                load_raw(Path(raw_dir), lake)
            with tempfile.TemporaryDirectory(prefix="rental_kpis_zip_") as tmp:
                # the zip is what spark-submit ships; a caller's session needs none
                library_zip = build_library_zip(Path(tmp)) if spark is None else Path(tmp)

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
                        record["stages"][step].update(status=event, finished_at=now)
                        event = "failed"
                    write_run_record(lake, record)
                    notify(step, event, done)

                if spark is None:
                    preload_local_stages(steps)
                for group in _stage_groups(steps):
                    try:
                        _run_group(
                            group,
                            lake,
                            result.run_id,
                            library_zip,
                            master,
                            driver_memory,
                            on_stage,
                            spark,
                        )
                    except BaseException as error:
                        outcome = INTERRUPTED if _is_interruption(error) else "failed"
                        running = [
                            s for s, f in record["stages"].items() if f["status"] == "running"
                        ]
                        for step in running:
                            on_stage(step, outcome, None)
                        raise
                    if group[0] in SPARK_STAGES:
                        record[TABLES_KEY] = tables_fingerprint(lake)
                        write_run_record(lake, record)
            record["status"] = completed_status(record)
        except BaseException as error:
            if _is_interruption(error):
                record["status"] = INTERRUPTED
                signum = error.signum if isinstance(error, Interrupted) else signal.SIGINT
                stages = [s for s, f in record["stages"].items() if f["status"] == INTERRUPTED]
                where = f" during {', '.join(stages)}" if stages else ""
                error = Interrupted(signum, f"run {result.run_id}{where}")
                record["error"] = str(error)
                raise error from None
            record["status"] = "failed"
            record["error"] = str(error) or type(error).__name__
            raise
        finally:
            record["finished_at"] = _now()
            write_run_record(lake, record)
    return result


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


def _run_group(
    group: list[str],
    lake: Lake,
    run_id: str,
    library_zip: Path,
    master: str,
    driver_memory: str,
    on_stage: StageEvent,
    spark: SparkSession | None = None,
) -> None:
    if group[0] in SPARK_STAGES and spark is not None:
        run_session_steps(spark, group, lake, run_id, on_stage)
        return
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
