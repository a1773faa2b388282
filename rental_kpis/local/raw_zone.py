"""The lake's raw zone: a raw folder checked whole, then switched in all or nothing.

Also the recovery every writer runs first under the lake lock: a switch that a killed run
left half done is finished, and staging folders that never got switched in are deleted.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

from rental_kpis.errors import LakeUnusable, os_error_text
from rental_kpis.layout import Lake, check_lake_outside_raw, raw_input_files
from rental_kpis.local.lock import lake_lock
from rental_kpis.spark import switch
from rental_kpis.spark.switch import STAGING_DIR


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

    Returns the number of files per dataset. Raises InputError for a file ``check_raw``
    refuses, LakeUnusable for a lake inside ``raw_dir`` or a copy the OS refuses.
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


def raw_bytes(lake: Lake) -> int | None:
    """Bytes of the lake's raw zone, or None for a remote lake (not listed from here)."""
    if lake.remote:
        return None
    return sum(p.stat().st_size for p in Path(lake.uri("raw")).rglob("*") if p.is_file())
