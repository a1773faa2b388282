"""Switching complete folders into a local lake: all of a step's tables together, no gap.

Standard library only, so the local runner (raw zone), the crawler and the Spark driver
(curated, rejected, processed) share it. How it holds:

- **Together.** A step's tables are written to ``<zone>/_staging/<table>.<token>`` first.
  Before the first live folder changes, a *journal* ``<lake>/_switch/<token>.json`` names
  every (staging, target) pair and the inode of each staging folder; it is written to a temp
  name, fsynced and renamed, so it exists whole or not at all. Then each pair is switched and
  the journal deleted last. A process killed in between leaves the journal: ``recover`` (run
  by the next run under the lake lock, by each Spark step, and by crawl) finishes the switch.
  Every staging folder of a journal is complete (the journal is written after the writes),
  so finishing — rolling forward — is always possible; a switch without a journal had not
  begun and its staging folders are only deleted.
- **No gap.** A live folder is replaced with ``renameat2(RENAME_EXCHANGE)`` (Linux 3.15+,
  ext4, xfs, btrfs, tmpfs): the old and new folder trade names in one step, so a reader sees
  one or the other, never nothing. The old one, now under the staging name, is deleted after
  every pair has switched. Where the filesystem refuses the exchange (EINVAL, ENOSYS) the old
  folder is moved aside and the new one in: a gap of one rename.
- A pair is known to be done when its target has the inode the journal recorded for the
  staging folder (an exchange swaps names, not inodes), so replaying a journal twice is safe.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import secrets
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

JOURNAL_DIR = "_switch"
STAGING_DIR = "_staging"
# Tests set this to N to kill the process (SIGKILL) right after the N-th pair of a switch.
FAULT_ENV = "RENTAL_KPIS_FAULT_AFTER_SWITCHES"

_AT_FDCWD = -100
_RENAME_EXCHANGE = 1 << 1
_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)


@dataclass(frozen=True)
class Pair:
    staging: str
    target: str
    inode: int


def exchange(a: str, b: str) -> bool:
    """Atomically trade the names of ``a`` and ``b`` (both must exist); False when the
    filesystem or kernel cannot (then the caller falls back to two renames)."""
    if _renameat2 is None:
        return False
    result = _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), a)


def local_path(uri: str) -> str | None:
    """The filesystem path of a local lake URI (``/x``, ``file:/x``, ``file:///x``), else None."""
    if uri.startswith("file:"):
        rest = uri[len("file:") :]
        return "/" + rest.lstrip("/") if rest.startswith("/") else rest
    if "://" in uri or uri.startswith(("s3:", "s3a:", "s3n:", "hdfs:")):
        return None
    return uri


def switch(pairs: list[tuple[str, str]], root: str) -> None:
    """Replace each target folder by its complete staging folder, all or none (see module)."""
    if not pairs:
        return
    journal_dir = Path(root) / JOURNAL_DIR
    journal_dir.mkdir(parents=True, exist_ok=True)
    entries = [Pair(s, t, os.stat(s).st_ino) for s, t in pairs]
    journal = journal_dir / f"{secrets.token_hex(6)}.json"
    _write_whole(journal, json.dumps([e.__dict__ for e in entries], indent=1))
    _apply(entries)
    journal.unlink()
    _fsync_dir(journal_dir)


def recover(root: str) -> list[str]:
    """Finish every switch a killed process left half done under ``root``; return the
    targets it completed. Journals are replayed in the order they were written."""
    journal_dir = Path(root) / JOURNAL_DIR
    if not journal_dir.is_dir():
        return []
    finished: list[str] = []
    for leftover in journal_dir.glob(".*.tmp"):  # never renamed: that switch had not begun
        leftover.unlink()
    journals = sorted(journal_dir.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    for journal in journals:
        entries = [Pair(**e) for e in json.loads(journal.read_text())]
        _apply(entries)
        finished += [e.target for e in entries]
        journal.unlink()
    _fsync_dir(journal_dir)
    return finished


def discard_staging(root: str, zones: tuple[str, ...]) -> None:
    """Delete staging folders no journal refers to (writes of a step that was killed):
    only while holding the lake, when no writer can be using them."""
    if list((Path(root) / JOURNAL_DIR).glob("*.json")):
        return  # recover first
    for zone in zones:
        shutil.rmtree(Path(root) / zone / STAGING_DIR, ignore_errors=True)


def _apply(entries: list[Pair]) -> None:
    fault = int(os.environ.get(FAULT_ENV, "0") or 0)
    for number, entry in enumerate(entries, start=1):
        if _inode(entry.target) != entry.inode:  # not switched yet
            if not os.path.exists(entry.target):
                os.makedirs(os.path.dirname(entry.target), exist_ok=True)
                os.rename(entry.staging, entry.target)
            elif not exchange(entry.staging, entry.target):
                aside = entry.staging + ".old"
                os.rename(entry.target, aside)
                os.rename(entry.staging, entry.target)
                os.rename(aside, entry.staging)
            _fsync_dir(os.path.dirname(entry.target))
        if number == fault:
            os.kill(os.getpid(), signal.SIGKILL)
    for entry in entries:  # the old folders, now under the staging names
        shutil.rmtree(entry.staging, ignore_errors=True)
        shutil.rmtree(entry.staging + ".old", ignore_errors=True)


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


def _write_whole(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(temp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: str | os.PathLike[str]) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
