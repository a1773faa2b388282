"""Lake zones and their URIs: the same keys under ``s3://bucket/`` and a local folder (SPEC §2).

Every other module asks this one where things live, so the layout is written down once.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

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
    return "://" in root and not root.startswith("file://")


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
        root = self.root.rstrip("/")
        if root.startswith("file://"):
            root = root[len("file://") :]
        if not is_remote(root):
            root = os.path.abspath(root)
        object.__setattr__(self, "root", root)

    @property
    def remote(self) -> bool:
        return is_remote(self.root)

    def uri(self, zone: str, *parts: str) -> str:
        if zone not in ZONES:
            raise ValueError(f"unknown lake zone {zone!r}; expected one of {', '.join(ZONES)}")
        return "/".join([self.root, zone, *parts])

    def key(self, uri: str) -> str:
        """The part of ``uri`` below the root: the S3 object key of a zone URI.

        >>> Lake("s3://bucket").key("s3://bucket/runs/r1/validate_raw.json")
        'runs/r1/validate_raw.json'
        """
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


RAW_FILE_PATTERN = "*.csv"


def raw_input_files(raw_dir: Path) -> dict[str, list[Path]]:
    """The input files of each dataset under ``raw_dir/<dataset>/``, in SPEC §1 order.

    The one rule for what a raw folder must hold, used before anything is copied or uploaded
    (local run, ``aws setup``): a dataset without files is an error naming its folder.
    """
    from rental_kpis.errors import InputError

    found: dict[str, list[Path]] = {}
    for dataset in DATASETS:
        folder = raw_dir / dataset
        files = sorted(folder.glob(RAW_FILE_PATTERN)) if folder.is_dir() else []
        if not files:
            raise InputError(f"dataset {dataset!r}: no CSV files in {folder}")
        found[dataset] = files
    return found
