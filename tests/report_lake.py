"""A lake the final report can run on in seconds, without Spark: generated raw data (optionally
with hostile text in every text column the report shows), the KPI tables computed by the DuckDB
reference (``rental_kpis.devtools.reference``, the oracle the Spark tables are checked
against), a run record and step summaries as a whole run leaves them, and the local catalog."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import duckdb

from rental_kpis.devtools.datagen import generate
from rental_kpis.devtools.reference import run_reference
from rental_kpis.layout import Lake
from rental_kpis.local import glue as catalog
from rental_kpis.local.run_records import LOCAL_STAGES
from rental_kpis.stages import SPARK_STAGES

# Each payload opens a dialog if it ever runs as markup; the report must show it as text.
PAYLOADS: dict[tuple[str, str], str] = {
    ("locations", "location_name"): '<script>alert("location")</script>',
    ("locations", "city"): '<img src=x onerror=alert("city")>',
    ("locations", "state"): '"><svg onload=alert("state")>',
    ("users", "first_name"): "<b onmouseover=alert('first')>",
    ("users", "last_name"): "<iframe src=javascript:alert('last')>",
    ("vehicles", "vehicle_type"): "<details open ontoggle=alert('type')>",
}
# The user id is a key: it changes in users and rental_transactions alike.
USER_ID_PAYLOAD = "<img src=y onerror=alert('user')>"


def _rewrite(path: Path, change: dict[str, object]) -> None:
    """Rewrite a clean generated CSV, changing columns by ``{column: function(value)}``."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
        fields = list(rows[0])
    for row in rows:
        for column, function in change.items():
            row[column] = function(row[column])  # type: ignore[operator]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, quoting=csv.QUOTE_MINIMAL)
        writer.writeheader()
        writer.writerows(rows)


def add_payloads(raw: Path) -> None:
    """Put a payload into every text column the report shows, in every row (so whichever
    rows the report ranks first carry one). Vehicle types keep their three distinct values."""
    for (dataset, column), payload in PAYLOADS.items():
        path = next((raw / dataset).glob("*.csv"))
        if column == "vehicle_type":
            _rewrite(path, {column: lambda v, p=payload: f"{v}{p}" if v == "high_end" else v})
        else:
            _rewrite(path, {column: lambda v, p=payload: f"{p} {v}"})
    for dataset in ("users", "rental_transactions"):
        path = next((raw / dataset).glob("*.csv"))
        _rewrite(path, {"user_id": lambda v: f"{USER_ID_PAYLOAD}{v}"})


def edit_rentals(raw: Path, edit: Callable[[int, dict[str, str]], dict[str, str] | None]) -> None:
    """Rewrite the generated rentals: ``edit(i, row)`` gives the i-th row's new values, or None
    to drop it."""
    path = next((raw / "rental_transactions").glob("*.csv"))
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
        fields = list(rows[0])
    edited = [row for i, old in enumerate(rows) if (row := edit(i, dict(old))) is not None]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(edited)


def build_lake(
    root: Path,
    run_id: str,
    *,
    transactions: int = 3000,
    hostile: bool = False,
    edit: Callable[[Path], None] | None = None,
) -> Lake:
    """Raw data under ``root/raw``, a lake under ``root/lake`` holding the processed tables,
    the curated rentals' pickup/dropoff pairs, a succeeded run ``run_id`` and its catalog.
    ``edit(raw)`` changes the generated raw files first."""
    raw = root / "raw"
    generate(raw, transactions, seed=7, defect_rate=0.0 if hostile or edit else 0.002)
    if hostile:
        add_payloads(raw)
    if edit is not None:
        edit(raw)
    result = run_reference(raw, threads=1)
    lake = Lake(str(root / "lake"))
    con = duckdb.connect()
    for name, frame in result.tables.items():
        folder = Path(lake.processed(name))
        folder.mkdir(parents=True)
        con.register("frame", frame)
        if name == "daily_metrics" and len(frame):  # empty: one file, as Spark writes it
            con.execute(f"COPY frame TO '{folder}' (FORMAT parquet, PARTITION_BY (year, month))")
        else:
            con.execute(f"COPY frame TO '{folder / 'part-0.parquet'}' (FORMAT parquet)")
        con.unregister("frame")
        (folder / "_SUCCESS").touch()  # a complete write, as Spark marks it
    curated = Path(lake.curated("rental_transactions"))
    curated.mkdir(parents=True)
    rentals = next((raw / "rental_transactions").glob("*.csv"))
    con.execute(
        f"""COPY (SELECT TRY_CAST(pickup_location AS INTEGER) AS pickup_location,
                         TRY_CAST(dropoff_location AS INTEGER) AS dropoff_location
                  FROM read_csv('{rentals}', all_varchar = true, header = true,
                                ignore_errors = true))
            TO '{curated / "part-0.parquet"}' (FORMAT parquet)"""
    )
    con.close()
    runs = Path(lake.uri("runs", run_id))
    runs.mkdir(parents=True)
    versions = {"rental_kpis": "0.1.0", "spark": "3.5.6", "python": "3.11"}
    summaries = {step: {"step": step, "versions": versions} for step in SPARK_STAGES}
    summaries["validate_raw"]["datasets"] = result.counts
    for step, summary in summaries.items():
        (runs / f"{step}.json").write_text(json.dumps(summary))
    stages = {
        stage: {
            "status": "succeeded",
            "started_at": f"2026-01-01T12:00:{10 * i:02d}.000+00:00",
            "finished_at": f"2026-01-01T12:00:{10 * i + 9:02d}.000+00:00",
            "seconds": 9.0,
        }
        for i, stage in enumerate(LOCAL_STAGES)
    }
    record = {
        "run_id": run_id,
        "status": "succeeded",
        "started_at": "2026-01-01T12:00:00+00:00",
        "finished_at": "2026-01-01T12:01:00+00:00",
        "stages": stages,
        "error": None,
    }
    (runs / "run.json").write_text(json.dumps(record))
    catalog.crawl(lake)
    return lake
