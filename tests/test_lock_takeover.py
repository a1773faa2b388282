"""A lock takeover stops only the processes of this lake's dead holder, never another lake's.

The holder here is a real ``lake_lock`` in a subprocess, with two children carrying its run
token: a stand-in for the JVM (it inherits the lock's descriptor, as ``spark-submit`` does) and
one for a Python worker (no descriptor). Every process a test starts is killed by the test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from cli_runner import run_cli

from rental_kpis.errors import LakeBusy
from rental_kpis.layout import Lake
from rental_kpis.local.lock import LOCK_FILE, is_alive, lake_lock, process_start

HOLDER = """
import os, subprocess, sys, time
from rental_kpis.layout import Lake
from rental_kpis.local.lock import RUN_TOKEN_ENV, lake_lock, lock_fd
lake = Lake(sys.argv[1])
with lake_lock(lake, "run original") as held:
    env = {**os.environ, RUN_TOKEN_ENV: held.token}
    sleep = [sys.executable, "-c", "import time; time.sleep(300)"]
    jvm = subprocess.Popen(sleep, env=env, pass_fds=(lock_fd(lake),))
    worker = subprocess.Popen(sleep, env=env)
    print(jvm.pid, worker.pid, flush=True)
    time.sleep(300)
"""


def _alive(pid: int) -> bool:
    return is_alive(pid, None)


@contextlib.contextmanager
def running_lake(lake: Path) -> Iterator[tuple[subprocess.Popen, list[int]]]:
    """A lake held by a live run whose JVM and worker carry its token; all killed on exit."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lake)], stdout=subprocess.PIPE, text=True
    )
    children: list[int] = []
    try:
        assert holder.stdout is not None
        children = [int(pid) for pid in holder.stdout.readline().split()]
        assert len(children) == 2
        yield holder, children
    finally:
        for pid in [holder.pid, *children]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        holder.wait(30)


def _copy(lake: Path, to: Path) -> Path:
    subprocess.run(["cp", "-a", str(lake), str(to)], check=True)
    return to


@pytest.mark.parametrize("holder_state", ["running", "killed"])
def it_never_stops_the_processes_of_the_lake_a_lake_was_copied_from(tmp_path, holder_state):
    original = tmp_path / "lake"
    with running_lake(original) as (holder, children):
        if holder_state == "killed":  # SIGKILL: its JVM lives on, holding the lock
            holder.kill()
            holder.wait(30)
        copy = _copy(original, tmp_path / "copy")

        done = run_cli("crawl", "--lake", str(copy), timeout=120)

        assert done.returncode == 0, done.stderr
        assert all(_alive(pid) for pid in children)
        assert (holder.poll() is None) == (holder_state == "running")
        assert (copy / LOCK_FILE).read_text() == ""  # taken and released by the crawl
        if holder_state == "killed":  # the original lake's own takeover does stop them
            started = time.monotonic()
            with lake_lock(Lake(str(original)), "run next"):
                assert not any(_alive(pid) for pid in children)
                assert (original / LOCK_FILE).read_text().startswith("run next (pid")
            assert time.monotonic() - started < 10


@pytest.mark.parametrize("holder_state", ["running", "killed"])
def it_never_stops_the_processes_of_the_lake_a_hard_linked_copy_came_from(tmp_path, holder_state):
    """``cp -al`` (or rsync --link-dest, snapshot tools): the copy's lock file IS the
    original's, so its flock is the original's too; the copy is refused, nothing stopped."""
    original = tmp_path / "lake"
    with running_lake(original) as (holder, children):
        if holder_state == "killed":
            holder.kill()
            holder.wait(30)
        copy = tmp_path / "copy"
        subprocess.run(["cp", "-al", str(original), str(copy)], check=True)

        done = run_cli("crawl", "--lake", str(copy), timeout=120)

        assert done.returncode == 2, done.stderr
        assert "rental-kpis: error: lake" in done.stderr
        assert all(_alive(pid) for pid in children)


def it_refuses_a_lock_held_by_processes_not_provably_this_lakes(tmp_path):
    """A lock file copied from another lake while processes hold this lake's lock (a stand-in
    for a JVM of an older version): refused with one line, and nothing is stopped."""
    lake = tmp_path / "lake"
    with running_lake(lake) as (holder, children):
        holder.kill()
        holder.wait(30)
        text = (lake / LOCK_FILE).read_text()
        other = tmp_path / "other.lock"
        other.write_text(text.replace("lock ", "lock 0"))  # another file's identity
        (lake / LOCK_FILE).write_text(other.read_text())  # same inode, foreign text
        refused = pytest.raises(LakeBusy, match="not provably this lake's")
        with refused, lake_lock(Lake(str(lake)), "run next"):
            pass
        assert all(_alive(pid) for pid in children)


def it_names_a_process_by_its_pid_and_start_time_read_on_any_system():
    """``process_start`` is psutil's start time; a lock file or run record of an earlier
    version holds clock ticks since boot (Linux's /proc/<pid>/stat), which still name it."""
    me, started = os.getpid(), process_start(os.getpid())
    assert started is not None and is_alive(me, started)
    epoch = psutil.Process(me).create_time()
    assert is_alive(me, f"{epoch + 1:.2f}")  # read after the clock moved by a second
    assert not is_alive(me, f"{epoch + 60:.2f}")  # a reused pid: another process
    ticks = Path(f"/proc/{me}/stat").read_text().rsplit(")", 1)[1].split()[19]
    assert is_alive(me, ticks)
    assert not is_alive(me, str(int(ticks) - 60 * os.sysconf("SC_CLK_TCK")))
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait(30)
    assert process_start(gone.pid) is None and not is_alive(gone.pid, None)
