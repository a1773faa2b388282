"""The second baseline of the benchmark: a plain DuckDB SQL of the same validation and the four
KPI tables, without reject bookkeeping.

``rental_kpis/devtools/reference.py`` (the oracle) keeps every rejected line and reason and
counts them; this keeps only what the KPI tables need: the valid rows. Same value rules
(the reference's macros), same KPI SQL, same files; wrong-width lines are skipped by the CSV
reader instead of being stored. It is what a hand-written single-node job would cost, so
the benchmark can show the price of the bookkeeping and the price of Spark separately.

    python benchmarks/plain_duckdb.py RAW_DIR   # prints the seconds as JSON
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb

from rental_kpis.devtools.reference import DATASET_COLUMNS, KPI_SQL, MACROS

KEYS = {"locations": "as_int(location_id)", "vehicles": "as_text(vehicle_id)",
        "users": "as_text(user_id)"}  # fmt: skip


def _read(raw_dir: Path, dataset: str) -> str:
    """Distinct raw rows as text; lines of the wrong width are dropped by the reader."""
    columns = ", ".join(f"'{c}': 'VARCHAR'" for c in DATASET_COLUMNS[dataset])
    return f"""SELECT DISTINCT * FROM read_csv('{raw_dir / dataset / "*.csv"}',
        header = true, delim = ',', quote = '"', escape = '"', columns = {{{columns}}},
        strict_mode = true, null_padding = false, ignore_errors = true)"""


def run_plain(raw_dir: Path | str) -> dict:
    """Valid rows only, then the four tables; returns the tables (pandas) and the seconds."""
    raw_dir = Path(raw_dir)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(MACROS)
    started = time.monotonic()
    for dataset, key in KEYS.items():
        con.execute(f"""
            CREATE TABLE valid_{dataset} AS
            WITH k AS (SELECT *, {key} AS key FROM ({_read(raw_dir, dataset)}))
            SELECT * FROM k WHERE key IS NOT NULL QUALIFY count(*) OVER (PARTITION BY key) = 1
        """)
    con.execute(f"""
        CREATE TABLE rentals AS
        WITH p AS (
            SELECT as_text(rental_id) AS rental_id, as_text(user_id) AS user_id,
                   as_text(vehicle_id) AS vehicle_id, as_timestamp(rental_start_time) AS t_start,
                   as_timestamp(rental_end_time) AS t_end, as_int(pickup_location) AS pickup,
                   as_int(dropoff_location) AS dropoff, as_double(total_amount) AS amount,
                   count(*) OVER (PARTITION BY as_text(rental_id)) AS id_rows
            FROM ({_read(raw_dir, "rental_transactions")})
        )
        SELECT rental_id, user_id, vehicle_id, t_start, t_end, pickup, dropoff, amount,
               epoch(t_end) - epoch(t_start) AS seconds
        FROM p
        WHERE rental_id IS NOT NULL AND id_rows = 1 AND t_end > t_start AND amount >= 0
          AND NOT isnan(amount) AND NOT isinf(amount)
          AND user_id IN (SELECT key FROM valid_users)
          AND vehicle_id IN (SELECT key FROM valid_vehicles)
          AND pickup IN (SELECT key FROM valid_locations)
          AND dropoff IN (SELECT key FROM valid_locations)
    """)
    validated = time.monotonic()
    tables = {name: con.execute(sql).df() for name, sql in KPI_SQL.items()}
    finished = time.monotonic()
    con.close()
    return {
        "tables": tables,
        "seconds": {"validate": validated - started, "tables": finished - validated,
                    "total": finished - started},
    }  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(run_plain(sys.argv[1])["seconds"]))
