"""The Spark steps of a local run as one application, followed step by step.

The steps run in ONE ``spark-submit`` application (``steps.main_app``: the step functions in
order, one session, one JVM start) with the library as a zip (``--py-files``), so a packaging
fault shows up here, not on a cluster; on EMR the same step functions are three steps
(``emr_steps/*.py``). A caller that already has a session (the sprint 2 notebook) runs them in
it instead (``run_session_steps``). Either way each step gets its own record, time and log.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rental_kpis.errors import InputError, Interrupted, StepFailed
from rental_kpis.layout import Lake
from rental_kpis.local.lock import holder_token, lock_fd
from rental_kpis.local.raw_zone import raw_bytes
from rental_kpis.local.results import StageEvent, StepResult
from rental_kpis.local.step_logs import StepLogs, failure_detail, write_log
from rental_kpis.local.submit import start_spark_submit, stop_spark_submit
from rental_kpis.spark.session import quick_start_conf

if TYPE_CHECKING:  # pyspark is imported only where Spark runs
    from pyspark.sql import SparkSession

# Below this much raw input the application starts with the JVM's quick compiler only
# (``session.QUICK_START_JAVA_OPTION``).
SMALL_INPUT_BYTES = 64 * 2**20

# The script the local run submits: like emr_steps/*.py, argument parsing and one call.
APP_SCRIPT_NAME = "rental_kpis_app.py"
APP_SCRIPT = '''"""The Spark steps of a local rental_kpis run, in order, in one session."""

import sys

from rental_kpis.spark.steps import main_app

if __name__ == "__main__":
    sys.exit(main_app())
'''


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

    runs = _runs_folder(lake, run_id)
    script = library_zip.parent / APP_SCRIPT_NAME
    script.write_text(APP_SCRIPT)
    args = ["--lake-root", lake.root, "--run-id", run_id, "--steps", ",".join(steps)]
    follower = _Follower(lake, run_id, steps, StepLogs(runs, steps), on_step, parse_stage_mark)
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
        for line in proc.stdout:
            follower.read(line)
        returncode = proc.wait()
    finally:
        if proc is not None:  # interrupted or not: no process of the application survives
            stop_spark_submit(proc)
        follower.logs.close()
    if returncode != 0:
        raise follower.failed(returncode)
    follower.finish()
    return follower.results


def _runs_folder(lake: Lake, run_id: str) -> Path:
    runs = Path(lake.uri("runs", run_id))
    runs.mkdir(parents=True, exist_ok=True)
    return runs


class _Follower:
    """Reads the application's output: each line to the log of the step running, and the
    stage marks (``steps.parse_stage_mark``) to the step's start and end."""

    def __init__(
        self,
        lake: Lake,
        run_id: str,
        steps: Sequence[str],
        logs: StepLogs,
        on_step: StageEvent | None,
        parse_mark: Callable[[str], tuple[str, str] | None],
    ) -> None:
        self.parse_mark = parse_mark
        self.lake, self.run_id, self.steps, self.logs = lake, run_id, steps, logs
        self.notify: StageEvent = on_step or (lambda *_: None)
        self.results: list[StepResult] = []
        self.outputs: dict[str, list[str]] = {step: [] for step in steps}
        self.done: list[str] = []
        self.current, self.started = steps[0], time.monotonic()
        self.notify(self.current, "start", None)

    def read(self, line: str) -> None:
        mark = self.parse_mark(line.rstrip("\n"))
        if mark is None:
            self.logs.write(self.current, line)
            self.outputs[self.current].append(line)
            return
        step, event = mark
        if event == "done" and step != self.steps[-1]:
            self.done.append(step)
        elif event == "start" and step != self.current and self.current in self.done:
            self.finish()
            self.current, self.started = step, time.monotonic()
            self.notify(self.current, "start", None)

    def finish(self) -> None:
        """The current step has ended: its time, and the summary it wrote."""
        step = self.current
        summary_path = Path(self.lake.run_summary(self.run_id, step))
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        self.results.append(StepResult(step, time.monotonic() - self.started, summary))
        self.notify(step, "done", self.results[-1])

    def failed(self, returncode: int) -> StepFailed:
        detail = failure_detail("".join(self.outputs[self.current]))
        log = Path(self.lake.uri("runs", self.run_id)) / f"{self.current}.log"
        return StepFailed(self.current, returncode, detail, str(log))


def run_session_steps(
    spark: SparkSession,
    steps: Sequence[str],
    lake: Lake,
    run_id: str,
    on_step: StageEvent | None = None,
) -> list[StepResult]:
    """Run ``steps`` in ``spark``, a session this process already has; raise StepFailed.

    The same ``steps.run_steps`` that the submitted application calls, timed, logged and
    blamed step by step like it, without starting a second JVM. Bad input fails with exit
    code 2, as under spark-submit; any other error is chained, so its traceback stays with
    the StepFailed.
    """
    from rental_kpis.spark.steps import parse_stage_mark, run_steps

    notify = on_step or (lambda *_: None)
    runs = _runs_folder(lake, run_id)
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
        raise _session_step_failed(str(current["step"]), runs, error) from error
    return results


def _session_step_failed(step: str, runs: Path, error: Exception) -> StepFailed:
    """The StepFailed of ``error`` in ``step``, whose log gets the line or the traceback."""
    if isinstance(error, InputError):
        code, text = 2, f"error: {error}\n"
    else:  # the whole traceback (a JVM one included) to the log, its root cause to the line
        code, text = 1, "".join(traceback.format_exception(error))
    write_log(step, runs / f"{step}.log", text, mode="a")
    return StepFailed(step, code, failure_detail(text), str(runs / f"{step}.log"))
