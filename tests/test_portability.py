"""The local backend without Linux's own facilities: no ``/proc`` (but through psutil), no
``prctl``, no ``renameat2`` — what a macOS laptop offers. ``tests/without_linux_only.py``
takes them away from ``rental-kpis`` and from its Spark driver; each test runs the command
through it and proves both that it works and that nothing tried the missing facilities.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from rental_kpis.devtools.datagen import generate
from rental_kpis.local.lock import LOCK_FILE, is_alive, processes_with_token

WITHOUT = Path(__file__).with_name("without_linux_only.py")
TABLES = ("location_performance", "vehicle_type_performance", "user_metrics", "daily_metrics")


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("raw")
    generate(folder, 2_000, seed=3, defect_rate=0.001)
    return folder


@pytest.fixture
def logs(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "logs"
    folder.mkdir()
    return {"PROC_LOG": folder / "proc.log", "SWITCH_LOG": folder / "switch.log"}


def _start(logs: dict[str, Path], *args: str) -> subprocess.Popen:
    env = {**os.environ, "COLUMNS": "200", **{k: str(v) for k, v in logs.items()}}
    return subprocess.Popen(
        [sys.executable, str(WITHOUT), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(logs: dict[str, Path], *args: str, timeout: float = 600) -> tuple[int, str, str]:
    proc = _start(logs, *args)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _refused(logs: dict[str, Path]) -> str:
    """What tried /proc without psutil (empty when nothing did)."""
    path = logs["PROC_LOG"]
    return path.read_text() if path.exists() else ""


def _record(lake: Path, run_id: str) -> dict:
    path = lake / "runs" / run_id / "run.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _driver_runs(token: str) -> bool:
    """Whether the Spark driver of run ``token`` (Python under ``WITHOUT``) has started."""
    for pid in processes_with_token(token):
        with contextlib.suppress(psutil.Error):
            if "--driver" in psutil.Process(pid).cmdline():
                return True
    return False


def it_runs_the_pipeline_end_to_end(raw, tmp_path, logs):
    lake = tmp_path / "lake"
    for run_id in ("first", "second"):  # the second replaces live tables: exchanges
        code, _, err = _run(logs, "run", "--raw", str(raw), "--lake", str(lake),
                              "--run-id", run_id)  # fmt: skip
        assert code == 0, err
        assert _record(lake, run_id)["status"] == "succeeded"
    assert _refused(logs) == ""
    replaced = logs["SWITCH_LOG"].read_text().splitlines()  # no renameat2: two renames each
    assert {Path(p).name for p in replaced} >= set(TABLES)
    for table in TABLES:
        assert list((lake / "processed" / table).rglob("*.parquet"))
    assert (lake / "query-results" / "highest_revenue_location" / "second.csv").exists()
    assert not (lake / LOCK_FILE).read_text()  # released


HOLDER = """
import os, subprocess, sys, time
sys.path.insert(0, {tests!r})
import without_linux_only
without_linux_only.install()
from rental_kpis.layout import Lake
from rental_kpis.local.lock import RUN_TOKEN_ENV, lake_lock, lock_fd
lake = Lake(sys.argv[1])
with lake_lock(lake, "run original") as held:
    env = {{**os.environ, RUN_TOKEN_ENV: held.token}}
    sleep = [sys.executable, "-c", "import time; time.sleep(300)"]
    jvm = subprocess.Popen(sleep, env=env, pass_fds=(lock_fd(lake),))
    worker = subprocess.Popen(sleep, env=env)
    print(jvm.pid, worker.pid, flush=True)
    time.sleep(300)
"""


@contextlib.contextmanager
def killed_holder(lake: Path, logs: dict[str, Path]) -> Iterator[list[int]]:
    """A lake whose holder was killed with SIGKILL while its two children (one holding the
    lock's descriptor, as the JVM does) live on; every process is killed on exit."""
    env = {**os.environ, **{k: str(v) for k, v in logs.items()}}
    code = HOLDER.format(tests=str(WITHOUT.parent))
    holder = subprocess.Popen([sys.executable, "-c", code, str(lake)], env=env,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    children: list[int] = []
    try:
        assert holder.stdout is not None
        children = [int(pid) for pid in holder.stdout.readline().split()]
        assert len(children) == 2
        holder.kill()
        holder.wait(30)
        yield children
    finally:
        for pid in [holder.pid, *children]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def it_takes_over_the_lock_of_a_dead_holder(tmp_path, logs):
    lake = tmp_path / "lake"
    with killed_holder(lake, logs) as children:
        assert all(is_alive(pid, None) for pid in children)

        code, _, err = _run(logs, "crawl", "--lake", str(lake), timeout=120)

        assert code == 0, err
        assert not any(is_alive(pid, None) for pid in children)  # its JVM and worker
    assert _refused(logs) == ""


def it_stops_a_run_killed_with_sigterm(raw, tmp_path, logs):
    lake = tmp_path / "lake"
    run = _start(logs, "run", "--raw", str(raw), "--lake", str(lake), "--run-id", "killed")
    try:
        _wait(lambda: _record(lake, "killed").get("stages", {}).get("validate_raw", {})
              .get("status") == "running", 240, "validate_raw to start")  # fmt: skip
        token = (lake / LOCK_FILE).read_text().split("token ")[1].split()[0]
        _wait(lambda: _driver_runs(token), 120, "the Spark driver")
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(30)

    assert run.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1] == (
        "rental-kpis: run killed during validate_raw interrupted by SIGTERM"
    )
    assert processes_with_token(token) == []
    assert _record(lake, "killed")["status"] == "interrupted"
    assert not (lake / LOCK_FILE).read_text()
    assert _refused(logs) == ""


CHILDREN = """
import os, subprocess, sys
sys.path.insert(0, {tests!r})
import without_linux_only
without_linux_only.install()
from rental_kpis.cli import _child_pids
kernel = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
try:
    print(_child_pids(os.getpid()) == [kernel.pid], flush=True)
finally:
    kernel.kill()
"""


def it_finds_the_notebook_kernel_that_report_interrupts(logs):
    code = CHILDREN.format(tests=str(WITHOUT.parent))
    env = {**os.environ, **{k: str(v) for k, v in logs.items()}}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    assert _refused(logs) == ""
