"""The lake lock: one writer at a time, and no writer while processes of an earlier one live.

A run (and ``crawl``) holds an OS lock (``flock``) on ``lake/.rental_kpis.lock``. The kernel
releases it when every descriptor of it is closed, so:

- the Spark child of a run inherits the descriptor (``submit.start_spark_submit``): if the
  runner itself is killed hard (SIGKILL), the lock stays held while the JVM lives, instead of
  letting a second run write the same lake next to an orphaned JVM;
- the lock file names its holder (line 1, shown to a refused run), its process start, the
  run's *token* and the lock file's own identity (device and inode). Every process of a run
  carries the token in its environment (``RENTAL_KPIS_RUN_TOKEN``), the JVM's Python workers
  too, which live in process groups of their own (pyspark's daemon calls ``setpgid``). A lock
  whose holder process is dead is recognised: the processes that still carry its token are
  killed and the lock taken over — only when the lock file is the one that holder wrote and
  sits in the folder it held (same device and inode of both). A copied lake's lock file names
  the original's token and the original's inodes: its processes belong to another lake, and a
  takeover never stops them. A hard-linked copy (``cp -al``) shares the lock file itself, but
  not the lake's folder, which cannot be hard-linked.

The lock is re-entrant within one process: a run that crawls takes it once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

import psutil

from rental_kpis.errors import LakeBusy, LakeUnusable, os_error_text
from rental_kpis.layout import Lake

LOCK_FILE = ".rental_kpis.lock"
RUN_TOKEN_ENV = "RENTAL_KPIS_RUN_TOKEN"
# How long a taken-over lock waits for the processes of a dead holder to vanish.
REAP_SECONDS = 15.0
# How far apart two readings of one process's start time may be (``_same_start``).
START_TOLERANCE_SECONDS = 2.0


@dataclass
class HeldLock:
    root: Path
    handle: IO[str]
    token: str
    depth: int = 1


_held: dict[str, HeldLock] = {}


def process_start(pid: int) -> str | None:
    """The start time of ``pid`` (seconds since the epoch, two decimals), or None when no
    such process lives or it cannot be read: with the pid it names one process, even after
    pid reuse (``is_alive`` compares it)."""
    if pid < 1:
        return None
    try:
        return f"{psutil.Process(pid).create_time():.2f}"
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def is_alive(pid: int, started: str | None) -> bool:
    """Whether the process ``pid`` that started at ``started`` (``process_start``) still
    lives (not a zombie). A process that exists but that we may not inspect counts as alive:
    nothing proves it gone."""
    if pid < 1:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or _same_start(process.create_time(), started)
    except psutil.NoSuchProcess:  # ZombieProcess too
        return False
    except psutil.AccessDenied:
        return True


def _same_start(now: float, started: str) -> bool:
    """Whether a process that started at ``now`` (epoch seconds) is the one recorded as
    ``started``: within ``START_TOLERANCE_SECONDS``, because the operating system derives
    start times from a clock that moves (Linux: boot time plus clock ticks). ``started``
    in clock ticks since boot (no decimal point: lock files and run records of earlier
    versions) is converted first."""
    try:
        recorded = float(started)
    except ValueError:
        return False
    if "." not in started:  # clock ticks since boot, /proc/<pid>/stat field 22
        recorded = psutil.boot_time() + recorded / os.sysconf("SC_CLK_TCK")
    return abs(now - recorded) <= START_TOLERANCE_SECONDS


def processes_with_token(token: str) -> list[int]:
    """Live processes (not zombies) whose environment carries run token ``token``; those we
    may not inspect (another user's) cannot be ours and are left out."""
    found = []
    for process in psutil.process_iter():
        try:
            if (
                process.environ().get(RUN_TOKEN_ENV) == token
                and process.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):  # gone, or not ours
            continue
    return found


def kill_token_processes(token: str, timeout: float = REAP_SECONDS) -> list[int]:
    """SIGKILL every process of run token ``token`` until none is left or ``timeout`` passed;
    return the ones still alive (empty when all are gone)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = processes_with_token(token)
        if not alive or time.monotonic() >= deadline:
            return alive
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


@dataclass(frozen=True)
class Holder:
    """What a lock file says of the process that wrote it."""

    first: str  # "run <id> (pid N, started …)", shown to a refused run
    pid: int | None
    start: str | None
    token: str | None
    lock: str | None  # "<device>:<inode>" of the lock file it wrote, and of its folder

    @classmethod
    def parse(cls, text: str) -> Holder:
        lines = text.splitlines()
        first = lines[0].strip() if lines else ""
        pid = re.search(r"\(pid (\d+)", first)
        facts = dict(ln.split(" ", 1) for ln in lines[1:] if " " in ln)
        return cls(
            first,
            int(pid.group(1)) if pid else None,
            facts.get("start"),
            facts.get("token"),
            facts.get("lock"),
        )

    def dead(self) -> bool:
        """Whether the holder process is known and gone (pid and start time)."""
        return self.pid is not None and not is_alive(self.pid, self.start)

    def reapable_token(self, handle: IO[str], root: Path) -> str | None:
        """The token whose processes a takeover may stop: this holder's, when it is dead and
        wrote this very lock file in this very folder (``lock_identity``); else None."""
        mine = self.dead() and self.lock == lock_identity(handle, root)
        return self.token if mine else None


def lock_identity(handle: IO[str], root: Path) -> str:
    """``<device>:<inode>`` of an open lock file and of its lake folder: a copy of the lake
    has other ones (a hard-linked copy shares the file's, never the folder's)."""
    file, folder = os.fstat(handle.fileno()), os.stat(root)
    return f"{file.st_dev}:{file.st_ino} {folder.st_dev}:{folder.st_ino}"


@contextmanager
def lake_lock(lake: Lake, holder: str) -> Iterator[HeldLock]:
    """Hold ``lake`` for ``holder`` ("run <id>", "crawl"); a second holder is refused (LakeBusy).

    A lock whose holder process is dead but whose processes live on (a runner killed with
    SIGKILL: its JVM or Python workers) is taken over after killing them; so is a lock file
    left by a dead process. Released (after the caller stopped its children) on exit.
    """
    root = Path(lake.root)
    key = str(root.resolve())
    if key in _held:
        held = _held[key]
        held.depth += 1
        try:
            yield held
        finally:
            held.depth -= 1
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        handle = (root / LOCK_FILE).open("a+")
    except OSError as error:  # read-only, permission denied: the run's first write says so
        raise LakeUnusable(f"lake {root} cannot be written: {os_error_text(error)}") from error
    try:
        _acquire(handle, root)
    except BaseException:
        handle.close()
        raise
    token = secrets.token_hex(8)
    handle.seek(0)
    handle.truncate()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    handle.write(
        f"{holder} (pid {os.getpid()}, started {started})\n"
        f"start {process_start(os.getpid())}\ntoken {token}\nlock {lock_identity(handle, root)}\n"
    )
    handle.flush()
    held = _held[key] = HeldLock(root, handle, token)
    try:
        yield held
    finally:
        del _held[key]
        left = kill_token_processes(token)  # normally none: the caller stopped its children
        if left:  # keep the lock file's text: the next holder finds and reaps them
            handle.close()
        else:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


def _acquire(handle: IO[str], root: Path) -> None:
    """flock ``handle``, taking over from a dead holder of this lock file (``Holder``);
    LakeBusy if a live one has it, or processes that cannot be proven this lake's."""
    deadline = time.monotonic() + REAP_SECONDS
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = Holder.parse(handle.read())
            token = holder.reapable_token(handle, root)
            if token is None and holder.dead():
                raise LakeBusy(
                    f"lake {root} is held by processes left by {holder.first}, which has "
                    "ended; they are not provably this lake's (a lock file copied from another "
                    f"lake?), so they are not stopped: stop the processes holding "
                    f"{root / LOCK_FILE} (`fuser {root / LOCK_FILE}`), then try again"
                ) from None
            if token is None or time.monotonic() >= deadline:
                who = holder.first or "another run"
                if token is not None:
                    who += ", whose processes would not stop"
                raise LakeBusy(f"lake {root} is in use by {who}; wait for it to finish") from None
            kill_token_processes(token, max(0.0, deadline - time.monotonic()))
            time.sleep(0.05)
            continue
        # Ours now. A dead holder's processes may still run without the descriptor (the
        # JVM's Python workers): stop them before anything is written, when they are
        # provably this lake's (never those of the lake this one was copied from).
        handle.seek(0)
        token = Holder.parse(handle.read()).reapable_token(handle, root)
        if token is not None:
            left = kill_token_processes(token)
            if left:
                fcntl.flock(handle, fcntl.LOCK_UN)
                raise LakeBusy(
                    f"lake {root}: processes {left} of an interrupted run would not stop"
                )
        return


def holder_token(lake: Lake) -> str | None:
    """The token of this process's hold on ``lake`` (None when it holds none)."""
    held = _held.get(str(Path(lake.root).resolve()))
    return held.token if held else None


def lock_fd(lake: Lake) -> int | None:
    """The descriptor of this process's hold on ``lake``, for a child to inherit."""
    held = _held.get(str(Path(lake.root).resolve()))
    return held.handle.fileno() if held else None
