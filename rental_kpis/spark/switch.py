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
  In a copy of the lake (or one moved to another filesystem) the inodes are new: there the
  journal's list of the staging folder's files (names and sizes) tells which of the two
  folders is the new one (both match and hold the same bytes: nothing to switch); when it
  cannot, nothing is replayed and the journal is refused.
- **Only this lake.** A journal names its folders relative to the lake root
  (``processed/_staging/t.1a2b`` → ``processed/t``), so a lake copied or moved in the middle of
  a switch finishes its own switch, never the original's. Before a journal is replayed, every
  entry is resolved against this lake: one that lies outside it (``..``, an absolute path of
  another lake, a link that leads out of it), or a staging folder that is not in a ``_staging``
  folder, refuses the recovery (``JournalRefused``, one line) and nothing is touched. A journal
  written before entries were relative holds absolute paths: it is replayed only when every
  path lies in this lake (a lake upgraded in place), else refused with the same line.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import filecmp
import json
import os
import secrets
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from rental_kpis.errors import InputError, LakeUnusable

JOURNAL_DIR = "_switch"
STAGING_DIR = "_staging"
# Tests set this to N to kill the process (SIGKILL) right after the N-th pair of a switch.
FAULT_ENV = "RENTAL_KPIS_FAULT_AFTER_SWITCHES"

_AT_FDCWD = -100
_RENAME_EXCHANGE = 1 << 1
_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)


class JournalRefused(LakeUnusable, InputError):
    """A switch journal that names a folder outside its lake: nothing was replayed.

    A lake that cannot be used until the journal is dealt with (``LakeUnusable``), reported by
    a Spark step like bad input (one line, exit 2) rather than with a traceback.
    """


@dataclass(frozen=True)
class Pair:
    """One (staging, target) pair of a switch: absolute paths, the staging folder's inode and
    its files as (relative path, size) pairs (None in journals written before they were kept).
    """

    staging: str
    target: str
    inode: int
    files: list[list[object]] | None = None

    def entry(self, root: str) -> dict[str, object]:
        """The pair as its journal stores it: paths relative to the lake root ``root``."""
        return {
            "staging": journal_entry(self.staging, root),
            "target": journal_entry(self.target, root),
            "inode": self.inode,
            "files": self.files,
        }

    def switched(self, journal: str) -> bool:
        """Whether the new folder is already the target; ``JournalRefused`` when that cannot
        be told (a copied lake whose two folders hold the same file names and sizes)."""
        if _inode(self.staging) == self.inode:
            return False
        if _inode(self.target) == self.inode or not os.path.exists(self.staging):
            return True
        # New inodes (a copied lake): the new folder is the one holding the recorded files.
        in_target = self.files is not None and _files(self.target) == self.files
        in_staging = self.files is not None and _files(self.staging) == self.files
        if (
            in_target
            and in_staging
            and self.files is not None  # implied by in_target; narrows the type for mypy
            and _same_bytes(self.staging, self.target, self.files)
        ):
            return True  # the same files either way: nothing to switch
        if in_target == in_staging:
            raise JournalRefused(
                f"switch journal {journal} cannot tell whether {self.target} was switched "
                f"(a copy of a lake in the middle of a switch); nothing was changed: delete "
                f"{journal}, then run the pipeline again to rewrite the tables it names"
            )
        return in_target


def journal_entry(path: str, root: str) -> str:
    """``path`` (a folder under the lake root ``root``, a path or a URI) as a journal names it:
    relative to the root, ``/``-separated. ValueError for a path outside the root."""
    prefix = root.rstrip("/") + "/"
    relative = path[len(prefix) :] if path.startswith(prefix) else ""
    if not _plain_relative(relative):
        raise ValueError(f"{path} is not a folder inside the lake {root}")
    return relative


def resolve_entry(entry: object, root: str, journal: str, staging: bool = False) -> str:
    """The path (or URI) a journal ``entry`` names under the lake root ``root``.

    A relative entry is joined to the root; an absolute one (a journal written before entries
    were relative) is taken only when it lies under the root. ``JournalRefused`` naming
    ``journal`` for anything else: ``..``, another lake's path, a URI of another place, a
    staging folder (``staging``) that is not in a ``_staging`` folder.
    """
    prefix = root.rstrip("/") + "/"
    text = entry if isinstance(entry, str) else ""
    relative = text[len(prefix) :] if text.startswith(prefix) else text
    if not _plain_relative(relative):
        raise _refused(journal, repr(entry), f"outside the lake {root}")
    if staging and relative.split("/")[-2:-1] != [STAGING_DIR]:
        raise _refused(journal, repr(entry), f"not a staging folder of the lake {root}")
    return prefix + relative


def _plain_relative(path: str) -> bool:
    """A relative path of plain names: no empty, ``.`` or ``..`` part, no scheme, no NUL."""
    parts = path.split("/")
    return (
        bool(path)
        and ":" not in parts[0]
        and all(
            part not in ("", ".", "..") and "\\" not in part and "\0" not in part for part in parts
        )
    )


def _refused(journal: str, what: str, why: str) -> JournalRefused:
    return JournalRefused(
        f"switch journal {journal} names {what}, {why}; nothing was changed. A lake copied or "
        f"moved in the middle of a switch keeps a journal that is not its own: delete "
        f"{journal}, then run the pipeline again to rewrite the tables it names"
    )


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
    entries = [Pair(s, t, os.stat(s).st_ino, _files(s)) for s, t in pairs]
    journal = journal_dir / f"{secrets.token_hex(6)}.json"
    _write_whole(journal, json.dumps([e.entry(root) for e in entries], indent=1))
    _apply(entries, [True] * len(entries))
    journal.unlink()
    _fsync_dir(journal_dir)


def recover(root: str) -> list[str]:
    """Finish every switch a killed process left half done under ``root``; return the
    targets it completed. Journals are replayed in the order they were written, after every
    one of them has been read, found to name only folders of this lake and each pair's state
    told (else ``JournalRefused`` and nothing changes)."""
    journal_dir = Path(root) / JOURNAL_DIR
    if not journal_dir.is_dir():
        return []
    if not _really_inside(root, str(journal_dir)):
        raise JournalRefused(
            f"the switch journals' folder {journal_dir} is a link that leads out of the lake "
            f"{root}; nothing was changed: replace it by a folder of the lake"
        )
    finished: list[str] = []
    journals = sorted(journal_dir.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    replays = []
    for journal in journals:
        entries = read_journal(journal, root)
        replays.append((journal, entries, [not e.switched(str(journal)) for e in entries]))
    for leftover in journal_dir.glob(".*.tmp"):  # never renamed: that switch had not begun
        leftover.unlink()
    for journal, entries, pending in replays:
        _apply(entries, pending)
        finished += [e.target for e in entries]
        journal.unlink()
    _fsync_dir(journal_dir)
    return finished


def read_journal(journal: Path, root: str) -> list[Pair]:
    """The pairs of a local journal, each resolved in the lake ``root`` and checked to lie in
    it once links are followed (``resolve_entry``); ``JournalRefused`` otherwise."""
    try:
        entries = json.loads(journal.read_text())
        pairs = [(e["staging"], e["target"], int(e["inode"]), e.get("files")) for e in entries]
    except (ValueError, KeyError, TypeError):  # not JSON, not a list of (staging, target, inode)
        raise _refused(str(journal), "no list of switches", "so it cannot be replayed") from None
    checked = []
    for staging, target, inode, files in pairs:
        paths = (
            resolve_entry(staging, root, str(journal), staging=True),
            resolve_entry(target, root, str(journal)),
        )
        for path in paths:
            if not _really_inside(root, path):
                raise _refused(str(journal), path, f"a link that leads out of the lake {root}")
        checked.append(Pair(*paths, inode, files))
    return checked


def _really_inside(root: str, path: str) -> bool:
    """Whether ``path`` lies strictly inside ``root`` once every link is followed."""
    real_root, real = os.path.realpath(root), os.path.realpath(path)
    return real != real_root and os.path.commonpath([real_root, real]) == real_root


def discard_staging(root: str, zones: tuple[str, ...]) -> None:
    """Delete staging folders no journal refers to (writes of a step that was killed):
    only while holding the lake, when no writer can be using them."""
    if list((Path(root) / JOURNAL_DIR).glob("*.json")):
        return  # recover first
    for zone in zones:
        shutil.rmtree(Path(root) / zone / STAGING_DIR, ignore_errors=True)


def _apply(entries: list[Pair], pending: list[bool]) -> None:
    """Switch the entries still ``pending``, then delete the old folders (now staged)."""
    fault = int(os.environ.get(FAULT_ENV, "0") or 0)
    for number, (entry, todo) in enumerate(zip(entries, pending), start=1):
        if todo:
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


def _files(folder: str) -> list[list[object]] | None:
    """Every file under ``folder`` as [relative path, size], sorted; None when it is missing."""
    if not os.path.isdir(folder):
        return None
    found: list[list[object]] = []
    for parent, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(parent, name)
            found.append([os.path.relpath(path, folder), os.lstat(path).st_size])
    return sorted(found)


def _same_bytes(a: str, b: str, files: list[list[object]]) -> bool:
    """Whether folders ``a`` and ``b`` hold the same bytes in each of ``files``."""
    return all(
        filecmp.cmp(os.path.join(a, str(name)), os.path.join(b, str(name)), shallow=False)
        for name, _ in files
    )


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
