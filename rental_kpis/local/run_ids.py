"""Run ids on a lake: a known id is refused, except to go on with a partial run; a query
result kept under an id is read back, never run again."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rental_kpis.errors import LakeUnusable, RunIdTaken, os_error_text
from rental_kpis.layout import Lake, check_run_id
from rental_kpis.local.raw_zone import recover_lake
from rental_kpis.local.run_records import (
    PARTIAL,
    read_run_record,
    run_record_path,
    running,
    shown_record,
)
from rental_kpis.local.run_tables import check_run_tables


def run_id_use(lake: Lake, run_id: str) -> str | None:
    """What already uses ``run_id`` on this lake (its runs/ folder, a query result kept under
    it), or None when the id is free."""
    if Path(lake.uri("runs", run_id)).exists():
        return f"{lake.uri('runs', run_id)} exists"
    kept = sorted(Path(lake.uri("query-results")).glob(f"*/{run_id}.csv"))
    return f"query results are kept under it ({kept[0]})" if kept else None


def check_run_id_unused(lake: Lake, run_id: str) -> None:
    """Refuse (RunIdTaken) a run id that this lake already knows: a finished run's record
    and results are never rewritten by a second run of the same id."""
    use = run_id_use(lake, run_id)
    if use is not None:
        raise _taken(lake, run_id, use)


def _taken(lake: Lake, run_id: str, why: str) -> RunIdTaken:
    return RunIdTaken(
        f"run id {run_id} is taken on lake {lake.root}: {why}; a run's record and results "
        "are kept as they are: choose another id (or none, for a new one)"
    )


def kept_query_result(lake: Lake, name: str, run_id: str) -> str | None:
    """The CSV that run ``run_id`` kept of query ``name``, or None when the id is unused (a
    new result is kept under it). A run that kept no result of the query is RunIdTaken."""
    from rental_kpis import queries

    queries.load(name)  # an unknown name first: UnknownQuery
    path = Path(lake.uri("query-results", name, f"{check_run_id(run_id)}.csv"))
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        check_run_id_unused(lake, run_id)
        return None
    except (OSError, UnicodeDecodeError) as error:
        why = os_error_text(error) if isinstance(error, OSError) else str(error)
        raise LakeUnusable(f"query {name}: cannot read the result kept in {path}: {why}") from None


def resumed_record(
    lake: Lake, run_id: str, steps: Sequence[str] = (), raw_dir: Path | None = None
) -> dict | None:
    """The record of run ``run_id`` if it exists, reopened to run more of its stages: its
    stages so far are kept, its outcome is reset. None when the id is unused.

    Only a partial run is continued, with stages it has not yet succeeded in, on the raw zone
    it started with (no ``raw_dir``), and on the tables its Spark steps wrote
    (``check_run_tables``); any other use of a known id is RunIdTaken (TablesReplaced for the
    tables), and the record stays as it was.
    """
    path = run_record_path(lake, run_id)
    if not path.exists():
        check_run_id_unused(lake, run_id)
        return None
    record = shown_record(read_run_record(path))
    if record["status"] != PARTIAL:
        raise _taken(lake, run_id, f"run {run_id} {record['status']}")
    done = [s for s in steps if record["stages"].get(s, {}).get("status") == "succeeded"]
    if done:
        raise _taken(lake, run_id, f"run {run_id} already ran {', '.join(done)}")
    if raw_dir is not None:
        raise _taken(
            lake, run_id, f"run {run_id} is partial and goes on only on the raw zone it began with"
        )
    recover_lake(lake)  # a switch a killed run left half done changes the tables: first
    check_run_tables(lake, record, steps)
    return running(record)
