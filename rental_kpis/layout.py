"""Lake zones and their URIs: the same keys under ``s3://bucket/`` and a local folder (SPEC §2).

Every other module asks this one where things live, so the layout is written down once.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rental_kpis.errors import InvalidRunId, LakeUnusable

# The Glue database (and the local catalog's schema) that holds the KPI tables (SPEC §5).
DATABASE = "rental_marketplace"
DATASETS: tuple[str, ...] = ("locations", "vehicles", "users", "rental_transactions")
DIMENSIONS: tuple[str, ...] = ("locations", "vehicles", "users")
TABLES: tuple[str, ...] = (
    "location_performance",
    "vehicle_type_performance",
    "user_metrics",
    "daily_metrics",
)
ZONES: tuple[str, ...] = (
    "raw",
    "curated",
    "rejected",
    "processed",
    "runs",
    "query-results",
    "scripts",
    "emr-logs",
)

# What each zone holds, for people reading the layout (notebooks, docs).
ZONE_CONTENTS: dict[str, str] = {
    "raw": "the input CSV, one folder per dataset",
    "curated": "valid rows, typed Parquet",
    "rejected": "rejected rows: raw strings + rejection_reason",
    "processed": "the KPI tables, Snappy Parquet (what the crawler catalogs)",
    "runs": "one folder per run: row counts, timings and versions per step",
    "query-results": "named query answers, one CSV per query and run",
    "scripts": "the EMR step scripts and the library zip (AWS only)",
    "emr-logs": "EMR cluster and step logs (AWS only)",
}


def is_remote(root: str) -> bool:
    """True for object-store roots (``s3://``, ``s3a://``…), False for a local folder."""
    return "://" in root and not _is_file_uri(root)


def _is_file_uri(text: str) -> bool:
    return text[:5].lower() == "file:"


# A file URI as Hadoop prints it (file:/x), as RFC 8089 writes it (file:///x) or with its host
# named (file://localhost/x). The scheme and host are case-insensitive.
_FILE_URI = re.compile(r"file:(?://(?P<host>[^/]*))?(?P<path>/.*)?", re.IGNORECASE | re.DOTALL)


def _file_uri_path(text: str) -> str:
    """The local path a ``file:`` URI names (``file:/x``, ``file:///x``, ``file://localhost/x``
    are all ``/x``; ``file:///`` is ``/``); any other text is returned unchanged.

    A file URI of another host is not a folder here, ``file:`` or ``file://`` name none, and
    ``file:x`` is no URI Hadoop and Python read alike: LakeUnusable, in one line.
    """
    match = _FILE_URI.fullmatch(text)
    if not match:
        if _is_file_uri(text):
            raise LakeUnusable(
                f"lake {text} is a file URI without an absolute path: give file:///path, "
                "or the folder itself"
            )
        return text
    host, path = match["host"], match["path"]
    if host and host.lower() != "localhost":
        raise LakeUnusable(
            f"lake {text} is a file URI of the host {host}: the local backend needs a folder "
            "of this machine (file:///path, or the path itself)"
        )
    if not path:
        raise LakeUnusable(f"lake {text!r} names no folder: give one (default: lake)")
    return "/" + path.lstrip("/")  # file:////x is /x too


# ``s3:/b`` is what ``Path("s3://b")`` leaves of a URI: never a folder anyone meant.
_URI_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/")


# Characters Spark (Hadoop's globStatus) expands in a path it reads: a lake under b[ab]c/ would
# have its steps read bac/'s files.
HADOOP_GLOB = "{}[]*?\\"


def local_lake(root: str | os.PathLike[str]) -> Lake:
    """The lake of the local backend at ``root``, refused early when it cannot be one.

    An object-store URI is an error here (it used to become a folder named ``s3:``), and so
    are an empty path and the filesystem root (both used to mean the current folder), a path
    Spark would expand as a glob and a path that is, or lies under, a file: one line that says
    so, before anything is written.
    """
    text = os.fspath(root)
    if not text.strip():
        raise LakeUnusable(f"lake {text!r} names no folder: give one (default: lake)")
    if is_remote(text) or (_URI_LIKE.match(text) and not _is_file_uri(text)):
        raise LakeUnusable(
            f"lake {text} is a URI: the local backend needs a folder "
            "(a lake on S3 runs with `rental-kpis aws run` or `report --backend aws`)"
        )
    lake = Lake(text)
    if Path(lake.root) == Path(lake.root).parent:
        raise LakeUnusable(f"lake {text}: the root of the filesystem cannot be a lake")
    globbing = sorted(set(HADOOP_GLOB) & set(lake.root))
    if globbing:
        raise LakeUnusable(
            f"lake {lake.root}: its path holds {' '.join(globbing)}, which Spark reads as a "
            "pattern (it would read other folders that match); choose a folder without them"
        )
    for path in (Path(lake.root), *Path(lake.root).parents):
        if path.exists():
            if not path.is_dir():
                raise LakeUnusable(f"lake {lake.root}: {path} is a file, not a folder")
            break
    return lake


def check_lake_outside_raw(lake: Lake, raw: Path) -> None:
    """Refuse a lake that is, or lies in, a dataset folder of the raw input ``raw``, and a raw
    input that is, or lies anywhere in, the lake.

    Made in a dataset folder, the lake's own folders would become entries of that dataset,
    which the input check refuses on every later run with this raw folder. A lake around the
    raw input (``--raw data/raw --lake data``) would hold the user's data as its own: its raw
    zone replaced by the run, and all of it deleted with the lake (``make clean``).
    LakeUnusable before anything is written. Links are followed on both sides.
    """
    real = Path(lake.root).resolve()
    input_folder = Path(raw).resolve()
    if input_folder == real or real in input_folder.parents:
        raise LakeUnusable(
            f"lake {lake.root} holds the raw input {raw}: the lake would take the input as its "
            "own (a run replaces its raw zone, cleaning deletes it); choose a lake outside it"
        )
    for dataset in DATASETS:
        folder = (raw / dataset).resolve()
        if real == folder or folder in real.parents:
            raise LakeUnusable(
                f"lake {lake.root} lies in {raw / dataset}, a dataset folder of the raw input "
                f"{raw}: choose a lake outside it"
            )


def _check_part(part: str) -> str:
    """One path segment below a zone: never empty, ``.``, ``..``, or holding a separator."""
    if part in ("", ".", "..") or any(c in part for c in "/\\\0"):
        raise ValueError(f"{part!r} is not a single name inside the lake")
    return part


@dataclass(frozen=True)
class Lake:
    """A lake root and the URIs of its zones.

    A local root is made absolute, so that Spark executors started in another working
    directory resolve the same folder.

    >>> Lake("s3://bucket").uri("curated", "users")
    's3://bucket/curated/users'
    """

    root: str

    def __post_init__(self) -> None:
        root = _file_uri_path(self.root)
        root = root.rstrip("/") or root[:1]  # "/" and "//" stay the root
        if not is_remote(root):
            root = os.path.abspath(root)
        object.__setattr__(self, "root", root)

    @property
    def remote(self) -> bool:
        return is_remote(self.root)

    def uri(self, zone: str, *parts: str) -> str:
        if zone not in ZONES:
            raise ValueError(f"unknown lake zone {zone!r}; expected one of {', '.join(ZONES)}")
        if zone == "runs" and parts:
            check_run_id(parts[0])
        return "/".join([self.root, zone, *(_check_part(p) for p in parts)])

    def key(self, uri: str) -> str:
        """The part of ``uri`` below the root (an S3 object key); ValueError outside the lake."""
        prefix = self.root + "/"
        if not uri.startswith(prefix):
            raise ValueError(f"{uri} is not under the lake root {self.root}")
        return uri[len(prefix) :]

    def raw(self, dataset: str) -> str:
        return self.uri("raw", dataset)

    def curated(self, dataset: str) -> str:
        return self.uri("curated", dataset)

    def rejected(self, dataset: str) -> str:
        return self.uri("rejected", dataset)

    def processed(self, table: str) -> str:
        return self.uri("processed", table)

    def run_summary(self, run_id: str, step: str) -> str:
        return self.uri("runs", run_id, f"{step}.json")


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id: UTC time to the second plus a short random suffix."""
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


# The one shape of a run id, wherever one is accepted (CLI, step scripts, notebooks, AWS).
# A run id becomes a folder (runs/<id>/), a file name (query-results/<q>/<id>.csv) and a
# Step Functions execution name, so it is one safe path segment and a valid execution name:
# a letter or digit, then letters, digits, '-' or '_', 80 characters at most (new_run_id's
# 20261123T101010Z-3fa9c1 is one).
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")


def check_run_id(run_id: str) -> str:
    """``run_id`` itself if it has the one shape (``RUN_ID``), else ``InvalidRunId``."""
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise InvalidRunId(
            f"run id {run_id!r} is not allowed: use 1 to 80 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return run_id


def run_id_argument(value: str) -> str:
    """``check_run_id`` as an argparse ``type``: a refused id is a usage error (exit 2)."""
    try:
        return check_run_id(value)
    except InvalidRunId as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# SPEC §1: the files a dataset folder may hold (gzip is read as such); anything else is an error.
RAW_FILE_SUFFIXES: tuple[str, ...] = (".csv", ".CSV", ".csv.gz")
RAW_FILES_RULE = "a dataset folder holds only *.csv, *.CSV and *.csv.gz files"


def is_raw_data_file(name: str) -> bool:
    """True for a file name SPEC §1 lets a dataset folder hold (never ``_*`` or ``.*``)."""
    # Spark and Hadoop skip _* and .* when they list a folder: their rows would vanish.
    return name.endswith(RAW_FILE_SUFFIXES) and not name.startswith(("_", "."))


def raw_input_files(raw_dir: Path) -> dict[str, list[Path]]:
    """The input files of each dataset under ``raw_dir/<dataset>/``, in SPEC §1 order.

    The one rule for what a raw folder must hold, used before anything is copied or uploaded
    (local run, ``aws setup``): a dataset without files is an error naming its folder, and so
    is any entry that is not a data file (``is_raw_data_file``), naming that entry.
    """
    from rental_kpis.errors import InputError

    found: dict[str, list[Path]] = {}
    for dataset in DATASETS:
        folder = raw_dir / dataset
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
        for path in entries:
            if not (path.is_file() and is_raw_data_file(path.name)):
                raise InputError(
                    f"dataset {dataset!r}: {path} is not a data file ({RAW_FILES_RULE})"
                )
        if not entries:
            raise InputError(f"dataset {dataset!r}: no CSV files in {folder}")
        found[dataset] = entries
    return found
