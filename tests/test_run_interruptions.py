"""A local run stopped from outside: SIGTERM or SIGKILL during a Spark step, a lock whose
holder died or still lives, a run whose process is gone.

Every wait is bounded; every process a test starts is stopped by the test (``_stop``).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rental_kpis.devtools.datagen import generate
from rental_kpis.errors import LakeBusy
from rental_kpis.layout import Lake
from rental_kpis.local import athena as querying
from rental_kpis.local.lock import LOCK_FILE, RUN_TOKEN_ENV, lake_lock, processes_with_token
from rental_kpis.local.run_records import run_history
from rental_kpis.local.runner import run_local
from rental_kpis.stages import SPARK_STAGES

ENV = {**os.environ, "COLUMNS": "200"}
QUERY = "top_spending_users"


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("raw")
    generate(folder, 2_000, seed=14, defect_rate=0.001)
    return folder


@pytest.fixture(scope="module")
def good_lake(raw, tmp_path_factory, spark) -> tuple[Path, list]:
    """A lake after one whole run (in the tests' session: the faults below hit the runs that
    follow), and the answer of a named query on it."""
    lake_dir = tmp_path_factory.mktemp("good") / "lake"
    result = run_local(raw, lake_dir, run_id="good", spark=spark)
    return lake_dir, querying.run_named_query(result.lake, QUERY).rows


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(30)


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _record(lake_dir: Path, run_id: str) -> dict:
    try:
        return json.loads((lake_dir / "runs" / run_id / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def _lock_is_free(lake_dir: Path) -> bool:
    with (lake_dir / LOCK_FILE).open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rental_kpis.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


@pytest.mark.parametrize("step", SPARK_STAGES)
def it_stops_every_process_of_a_run_killed_with_sigterm_during_a_spark_step(
    good_lake, raw, tmp_path, step
):
    source, before = good_lake
    lake_dir = tmp_path / "lake"
    shutil.copytree(source, lake_dir)
    run = _cli("run", "--raw", str(raw), "--lake", str(lake_dir), "--run-id", "killed")
    try:
        # the step has started, and its Spark application is doing work (a JVM with our token)
        _wait(
            lambda: (
                _record(lake_dir, "killed").get("stages", {}).get(step, {}).get("status")
                == "running"
            ),
            240,
            f"{step} to start",
        )
        token = (lake_dir / LOCK_FILE).read_text().split("token ")[1].split()[0]
        _wait(lambda: len(processes_with_token(token)) >= 2, 60, "the Spark processes")
        time.sleep(1.0)
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
    finally:
        _stop(run)

    assert run.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines() == [
        f"rental-kpis: run killed during {step} interrupted by SIGTERM"
    ]
    assert processes_with_token(token) == []  # the JVM, the Python driver and its workers
    assert _lock_is_free(lake_dir)
    record = _record(lake_dir, "killed")
    assert record["status"] == "interrupted"
    assert record["stages"][step]["status"] == "interrupted"
    # the tables of the previous run are whole, registered and answer as before
    lake = Lake(str(lake_dir))
    assert querying.run_named_query(lake, QUERY).rows == before
    assert not list((lake_dir / "processed").glob("*/_temporary"))
    status = subprocess.run(
        [sys.executable, "-m", "rental_kpis.cli", "status", "--lake", str(lake_dir)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert "killed  interrupted" in status.stdout


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(30)
    return proc.pid


def it_takes_over_a_lock_whose_holder_died_and_stops_its_orphans(tmp_path):
    """A runner killed with SIGKILL: its lock file names a dead pid, and an orphan of the run
    (here a stand-in for the JVM, which inherited the lock) still holds the flock."""
    lake_dir = tmp_path / "lake"
    lake_dir.mkdir()
    lock = lake_dir / LOCK_FILE
    lock.write_text(f"run ghost (pid {_dead_pid()}, started x)\nstart 1\ntoken feedbeef\n")
    folder = lake_dir.stat()  # the file this holder wrote, in the folder it held
    identity = f"{lock.stat().st_dev}:{lock.stat().st_ino} {folder.st_dev}:{folder.st_ino}"
    lock.write_text(lock.read_text() + f"lock {identity}\n")
    orphan = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            f"f = open({str(lock)!r}, 'a+'); fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('held', flush=True); time.sleep(120)",
        ],
        env={**os.environ, RUN_TOKEN_ENV: "feedbeef"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert orphan.stdout is not None and orphan.stdout.readline() == "held\n"
        started = time.monotonic()
        with lake_lock(Lake(str(lake_dir)), "run next"):
            assert orphan.wait(10) == -signal.SIGKILL
            assert lock.read_text().startswith("run next (pid")
        assert time.monotonic() - started < 10
    finally:
        _stop(orphan)


def it_refuses_a_lock_held_by_a_live_process(tmp_path):
    lake_dir = tmp_path / "lake"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from rental_kpis.layout import Lake\n"
            "from rental_kpis.local.lock import lake_lock\n"
            f"with lake_lock(Lake({str(lake_dir)!r}), 'run alive'):\n"
            "    print('held', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        busy = pytest.raises(LakeBusy, match=f"in use by run alive \\(pid {holder.pid}")
        with busy, lake_lock(Lake(str(lake_dir)), "run other"):
            pass
        # crawl takes the lock too: refused with one line, exit 2, the catalog untouched
        crawl = subprocess.run(
            [sys.executable, "-m", "rental_kpis.cli", "crawl", "--lake", str(lake_dir)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert crawl.returncode == 2
        assert crawl.stderr.strip().splitlines() == [
            f"rental-kpis: error: lake {lake_dir} is in use by run alive (pid {holder.pid}, "
            + crawl.stderr.split(f"(pid {holder.pid}, ")[1].strip()
        ]
        assert not (lake_dir / "catalog.duckdb").exists()
        assert holder.poll() is None
    finally:
        _stop(holder)


def it_shows_a_run_whose_process_was_killed_as_interrupted(tmp_path):
    lake_dir = tmp_path / "lake"
    record = {
        "run_id": "gone",
        "status": "running",
        "started_at": "2026-01-01T00:00:00+00:00",
        "stages": {"validate_raw": {"status": "running"}},
        "pid": _dead_pid(),
        "pid_start": "1",
    }
    (lake_dir / "runs" / "gone").mkdir(parents=True)
    (lake_dir / "runs" / "gone" / "run.json").write_text(json.dumps(record))
    (history,) = run_history(Lake(str(lake_dir)))
    assert history["status"] == "interrupted"
    assert history["stages"]["validate_raw"]["status"] == "interrupted"


def it_takes_over_the_lake_of_a_runner_killed_with_sigkill(good_lake, raw, tmp_path):
    """No handler runs on SIGKILL: the Spark child dies with its parent (PDEATHSIG), the next
    run recognises the dead holder, stops what is left of its processes and runs; status
    shows the killed run as interrupted, not running."""
    source, before = good_lake
    lake_dir = tmp_path / "lake"
    shutil.copytree(source, lake_dir)
    run = _cli("run", "--raw", str(raw), "--lake", str(lake_dir), "--run-id", "shot")
    try:
        _wait(
            lambda: (
                _record(lake_dir, "shot").get("stages", {}).get("validate_raw", {}).get("status")
                == "running"
            ),
            240,
            "validate_raw to start",
        )
        token = (lake_dir / LOCK_FILE).read_text().split("token ")[1].split()[0]
        _wait(lambda: len(processes_with_token(token)) >= 2, 60, "the Spark processes")
        run.kill()
        run.wait(30)
    finally:
        _stop(run)
    _wait(lambda: _lock_is_free(lake_dir), 30, "the JVM (which holds the lock) to die")
    (killed,) = [r for r in run_history(Lake(str(lake_dir))) if r["run_id"] == "shot"]
    assert killed["status"] == "interrupted"
    result = run_local(None, lake_dir, run_id="after", steps=("crawl", "queries"))
    assert processes_with_token(token) == []
    assert [s.step for s in result.steps] == ["crawl", "queries"]
    assert querying.run_named_query(result.lake, QUERY).rows == before
