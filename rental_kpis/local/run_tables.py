"""The tables a run's Spark steps wrote, told apart from any later write of them, so that the
run's later stages and its report never use another run's tables."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from rental_kpis.errors import RunRecordDamaged, TablesReplaced
from rental_kpis.layout import Lake
from rental_kpis.local.run_records import read_run_record, run_history, run_record_path, started_at
from rental_kpis.spark.switch import STAGING_DIR
from rental_kpis.stages import SPARK_STAGES

# The zones the Spark steps write; their files are the tables a run's later stages read.
TABLE_ZONES: tuple[str, ...] = ("curated", "rejected", "processed")
TABLES_KEY = "tables"


def tables_fingerprint(lake: Lake) -> str:
    """What tells the tables in the lake now from any other write of them: a digest of the
    path and size of every file in the table zones (``TABLE_ZONES``), staging folders aside.
    Spark names the files it writes after the write job, so any new write of a table changes
    it; copying or moving the lake does not."""
    digest = hashlib.sha256()
    for zone in TABLE_ZONES:
        base = Path(lake.uri(zone))
        for path in sorted(base.rglob("*")):
            relative = path.relative_to(base)
            if relative.parts[0] != STAGING_DIR and path.is_file():
                digest.update(f"{zone}/{relative}\0{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def check_run_tables(lake: Lake, record: dict, what: Sequence[str] = ()) -> None:
    """Refuse (TablesReplaced) to go on with run ``record`` when the tables its Spark steps
    wrote are no longer the lake's: another run (or a step run by hand) wrote them since.
    ``what`` names what was about to use them (stages; empty: its report). A record that
    keeps no fingerprint (its Spark steps have not run) passes."""
    kept = record.get(TABLES_KEY)
    if kept is None or tables_fingerprint(lake) == kept:
        return
    run_id = record["run_id"]
    later = _later_spark_run(lake, record)
    by = f" by run {later['run_id']} (started {later['started_at']})" if later else ""
    raise TablesReplaced(
        f"run {run_id}: the tables its Spark steps wrote in {lake.root} were replaced{by}; "
        f"its {', '.join(what) or 'report'} would use another run's tables: run the whole "
        "pipeline again under a new run id"
    )


def check_tables_of(lake: Lake, run_id: str, what: Sequence[str] = ()) -> None:
    """``check_run_tables`` for run ``run_id`` by its record; a run without one passes."""
    path = run_record_path(lake, run_id)
    if path.exists():
        check_run_tables(lake, read_run_record(path), what)


def _later_spark_run(lake: Lake, record: dict) -> dict | None:
    """The newest other run whose Spark steps started after ``record``'s, if the records
    tell (a damaged one among them: None)."""
    since = max(_spark_starts(record), default=started_at(record))
    try:
        history = run_history(lake, limit=10**9)
    except RunRecordDamaged:
        return None
    later = [
        other
        for other in history
        if other["run_id"] != record["run_id"] and any(t > since for t in _spark_starts(other))
    ]
    return later[0] if later else None


def _spark_starts(record: dict) -> list[datetime]:
    """When each Spark stage of ``record`` started (stages without a readable time left out)."""
    starts = []
    for stage, facts in record["stages"].items():
        with contextlib.suppress(KeyError, TypeError, ValueError):
            if stage in SPARK_STAGES:
                starts.append(started_at(facts))
    return starts
