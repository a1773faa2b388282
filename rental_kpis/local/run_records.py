"""A run's record, ``runs/<run_id>/run.json``: its fields, written whole, read back checked,
and the history of the runs on a lake."""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from rental_kpis.errors import LakeUnusable, RunRecordDamaged, os_error_text
from rental_kpis.layout import Lake
from rental_kpis.local.lock import is_alive, process_start
from rental_kpis.stages import SPARK_STAGES

RUN_RECORD = "run.json"
LOCAL_STAGES: tuple[str, ...] = (*SPARK_STAGES, "crawl", "queries")
INTERRUPTED = "interrupted"
PARTIAL = "partial"


def now(timespec: str = "seconds") -> str:
    """The time in UTC, as a record keeps it."""
    return datetime.now(timezone.utc).isoformat(timespec=timespec)


def new_record(lake: Lake, run_id: str, raw_dir: Path | None) -> dict:
    """The record of a new run of this process, before any stage."""
    record: dict = {
        "run_id": run_id,
        "started_at": now(),
        "raw": str(raw_dir) if raw_dir else None,
        "lake": lake.root,
        "stages": {},
    }
    return running(record)


def running(record: dict) -> dict:
    """``record`` as run by this process from now on: running, without an outcome."""
    record.update(
        status="running",
        finished_at=None,
        error=None,
        pid=os.getpid(),
        pid_start=process_start(os.getpid()),
    )
    return record


def completed_status(record: dict) -> str:
    """The outcome of a run whose stages all ran without error: "succeeded" only when every
    stage of a whole run has succeeded, else "partial"."""
    stages = record.get("stages", {})
    done = all(stages.get(s, {}).get("status") == "succeeded" for s in LOCAL_STAGES)
    return "succeeded" if done else PARTIAL


def run_record_path(lake: Lake, run_id: str) -> Path:
    return Path(lake.uri("runs", run_id, RUN_RECORD))


def write_run_record(lake: Lake, record: dict) -> None:
    """Write the record of its run whole or not at all: to a temporary file, then renamed
    over the previous one, so a reader never meets half a record and a write the OS refuses
    (a full disk) leaves the previous record as it was and is LakeUnusable naming the file."""
    path = run_record_path(lake, record["run_id"])
    temporary = path.with_name(f".{RUN_RECORD}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise LakeUnusable(
            f"run {record['run_id']} ({record.get('status')}): cannot write its record "
            f"{path}: {os_error_text(error)}"
        ) from error


def read_run_record(path: Path) -> dict:
    """The run record at ``path``; RunRecordDamaged when it is not one (truncated, not a JSON
    object, or without a run id, an outcome, a start time or its stages)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _damaged(path, f"not JSON: {error}") from None
    if not isinstance(record, dict):
        raise _damaged(path, f"a JSON {type(record).__name__}, not an object")
    for key, kind in (("run_id", str), ("status", str), ("started_at", str), ("stages", dict)):
        if not isinstance(record.get(key), kind):
            raise _damaged(path, f"{key} is {json.dumps(record.get(key))}")
    try:
        started_at(record)
    except ValueError:
        raise _damaged(path, f"started_at {record['started_at']!r} is not a time") from None
    if not all(isinstance(f, dict) and isinstance(f.get("status"), str)
               for f in record["stages"].values()):  # fmt: skip
        raise _damaged(path, "a stage without an outcome")
    return record


def _damaged(path: Path, why: str) -> RunRecordDamaged:
    return RunRecordDamaged(
        f"run record {path} is damaged ({why}); move it out of runs/ (or repair it) to see "
        "the other runs"
    )


def run_history(lake: Lake, limit: int = 10) -> list[dict]:
    """The last runs on this lake, newest first, as their ``runs/<run_id>/run.json`` say.

    A record still "running" whose process is gone (killed with SIGKILL, the machine
    stopped) is shown as interrupted: nothing is running it any more. A damaged record is
    RunRecordDamaged naming it: never skipped in silence.
    """
    records = [
        shown_record(read_run_record(path))
        for path in Path(lake.uri("runs")).glob(f"*/{RUN_RECORD}")
    ]
    records.sort(key=started_at, reverse=True)
    return records[:limit]


def started_at(record: dict) -> datetime:
    """When a run (or stage) record started; a time without a zone is taken as UTC."""
    when = datetime.fromisoformat(record["started_at"])
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def shown_record(record: dict) -> dict:
    """``record`` as it stands now: one still "running" whose process is gone is
    interrupted, and so are its running stages."""
    if record["status"] == "running" and not is_alive(
        record.get("pid", -1), record.get("pid_start")
    ):
        record["status"] = INTERRUPTED
        record["error"] = record.get("error") or "its process ended without an outcome"
        for facts in record["stages"].values():
            if facts["status"] == "running":
                facts["status"] = INTERRUPTED
    return record
