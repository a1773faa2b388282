"""The generator's files: the out folder checked first, and every file written through no link."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path
from typing import BinaryIO

import pyarrow.csv as pacsv

from rental_kpis.devtools.datagen._defects import Written
from rental_kpis.errors import UsageError
from rental_kpis.layout import DATASETS
from rental_kpis.spark.schemas import column_names

MANIFEST = "generation_manifest.json"


# Opened without following a link: a link where the generator writes is an error (ELOOP).
_NO_LINK = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


_FOLDER = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NO_LINK


def _out_fd(out: Path) -> int:
    """``out``, made if missing and opened: the user named it, so it may be a link."""
    out.mkdir(parents=True, exist_ok=True)
    return os.open(out, _FOLDER & ~getattr(os, "O_NOFOLLOW", 0))


def _folder_fd(parent: int, name: str, shown: Path) -> int:
    """The folder ``name`` in the folder open as ``parent``, made if missing and opened
    without following a link."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, dir_fd=parent)
    try:
        return os.open(name, _FOLDER, dir_fd=parent)
    except OSError as error:
        if os.path.islink(shown) or not os.path.isdir(shown):
            raise _not_its_own(shown) from error
        raise


def _not_its_own(path: Path) -> UsageError:
    return UsageError(
        f"{path} is a link, or not a file of the generator's own: it writes nothing through "
        "a link; remove it or choose a new or empty folder"
    )


def _open_own(folder: int, name: str, shown: Path) -> BinaryIO:
    """The file ``name`` in the folder open as ``folder``, emptied for writing: never through
    a link, and never a file that has another name too (a hard link to a user's file).
    Opened non-blocking, so that a FIFO there is an error, not a wait for a reader."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | _NO_LINK
    try:
        fd = os.open(name, flags, 0o666, dir_fd=folder)
    except OSError as error:
        if os.path.islink(shown) or (os.path.exists(shown) and not os.path.isfile(shown)):
            raise _not_its_own(shown) from error
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise _not_its_own(shown)
        os.set_blocking(fd, True)
        os.ftruncate(fd, 0)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def write_dataset(out: Path, dataset: str, written: Written) -> Path:
    """Write ``out/<dataset>/<dataset>.csv`` (the folder is checked by ``check_out`` first),
    following no link below ``out``."""
    path = out / dataset / f"{dataset}.csv"
    table = written.table.select(column_names(dataset))
    root = _out_fd(out)
    try:
        folder = _folder_fd(root, dataset, out / dataset)
    finally:
        os.close(root)
    try:
        with _open_own(folder, path.name, path) as handle:
            pacsv.write_csv(table, handle, pacsv.WriteOptions(quoting_style="needed"))
            handle.write("".join(written.malformed_lines).encode("utf-8"))
    finally:
        os.close(folder)
    return path


def write_manifest(out: Path, manifest: dict) -> None:
    root = _out_fd(out)
    try:
        with _open_own(root, MANIFEST, out / MANIFEST) as handle:
            handle.write((json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    finally:
        os.close(root)


def generated_files(out: Path) -> set[Path]:
    """What ``generate`` writes under ``out``: the manifest and one CSV per dataset."""
    return {out / MANIFEST, *(out / name / f"{name}.csv" for name in DATASETS)}


def check_out(out: Path) -> None:
    """Refuse an ``out`` folder that holds anything the generator did not write.

    A new or empty folder is fine, and so is one a previous ``generate`` wrote (its manifest
    is there) holding nothing but those files: they are replaced. Anything else (a user's raw
    folder, a generated one with files added) is a UsageError naming a file found, before
    anything is written: the generator never deletes or mixes with files it did not make.
    So is any symbolic link inside ``out`` (``users/`` or ``users/users.csv`` made a link to a
    user's files): the generator would write through it. ``out`` itself may be a link.
    """
    if not out.is_dir():
        return
    links = sorted(
        Path(top, name)
        for top, folders, files in os.walk(out)
        for name in folders + files
        if os.path.islink(os.path.join(top, name))
    )
    if links:
        raise UsageError(
            f"--out {out} holds a symbolic link, {links[0]}: the generator writes nothing "
            "through a link; remove it or choose a new or empty folder"
        )
    found = {path for path in out.rglob("*") if not path.is_dir()}
    if not found:
        return
    expected = generated_files(out)
    if (out / MANIFEST) in found:
        found -= expected
        folders = {out, *(out / name for name in DATASETS)}
        found |= {p for p in out.rglob("*") if p.is_dir() and p not in folders}
        if not found:
            return
    raise UsageError(
        f"--out {out} holds files the generator did not write (such as {min(found)}); "
        "choose a new or empty folder"
    )
