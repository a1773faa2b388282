"""An independent implementation of SPEC §3–§4 in SQL on DuckDB.

It shares nothing with the Spark code but the spec and the decisions written in
``docs/validation.md``: it reads the raw CSV itself, validates, and computes the four KPI
tables. The tests use it as an oracle for the Spark tables; the benchmarks use it as the
single-node reference time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

DATASET_COLUMNS = {
    "locations": ["location_id", "location_name", "address", "city", "state", "zip_code",
                  "latitude", "longitude"],
    "vehicles": ["active", "vehicle_license_number", "registration_name", "license_type",
                 "expiration_date", "permit_license_number", "certification_date",
                 "vehicle_year", "base_telephone_number", "base_address", "vehicle_id",
                 "last_update_timestamp", "brand", "vehicle_type"],
    "users": ["user_id", "first_name", "last_name", "email", "phone_number",
              "driver_license_number", "driver_license_expiry", "creation_date", "is_active"],
    "rental_transactions": ["rental_id", "user_id", "vehicle_id", "rental_start_time",
                            "rental_end_time", "pickup_location", "dropoff_location",
                            "total_amount"],
}  # fmt: skip

# SQL macros for the value rules of docs/validation.md.
MACROS = r"""
CREATE OR REPLACE MACRO blank(x) AS x IS NULL OR trim(x) = '';
CREATE OR REPLACE MACRO as_int(x) AS CASE WHEN regexp_full_match(x, '\s*[+-]?[0-9]{1,10}\s*')
    THEN TRY_CAST(trim(x) AS INTEGER) END;
CREATE OR REPLACE MACRO as_double(x) AS CASE
    WHEN regexp_full_match(x, '\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*')
    THEN TRY_CAST(trim(x) AS DOUBLE) END;
CREATE OR REPLACE MACRO as_timestamp(x) AS CASE
    WHEN regexp_full_match(x, '[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}')
    THEN try_strptime(x, '%Y-%m-%d %H:%M:%S') END;
CREATE OR REPLACE MACRO as_text(x) AS CASE WHEN NOT blank(x) THEN x END;
CREATE OR REPLACE MACRO money_sum(x) AS sum(x::DECIMAL(38, 10))::DOUBLE;
"""

DIMENSION_KEY = {
    "locations": "as_int(location_id)",
    "vehicles": "as_text(vehicle_id)",
    "users": "as_text(user_id)",
}


@dataclass
class ReferenceResult:
    counts: dict[str, dict] = field(default_factory=dict)
    tables: dict[str, object] = field(default_factory=dict)  # name -> pandas.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)


def _load(con: duckdb.DuckDBPyConnection, raw_dir: Path, dataset: str) -> None:
    """Raw rows as text in ``raw_<dataset>``; wrong-width lines land in ``bad_<dataset>``."""
    columns = ", ".join(f"'{c}': 'VARCHAR'" for c in DATASET_COLUMNS[dataset])
    pattern = str(raw_dir / dataset / "*.csv")
    con.execute(f"""
        CREATE OR REPLACE TABLE raw_{dataset} AS
        SELECT {", ".join(DATASET_COLUMNS[dataset])}
        FROM read_csv('{pattern}', header = true, delim = ',', quote = '"', escape = '"',
                      columns = {{{columns}}}, store_rejects = true,
                      rejects_table = 'rejects_{dataset}', rejects_scan = 'scans_{dataset}',
                      strict_mode = true, null_padding = false)
    """)
    con.execute(f"""
        CREATE OR REPLACE TABLE bad_{dataset} AS
        SELECT csv_line, count(*) AS copies FROM (
            SELECT DISTINCT file_id, line, csv_line FROM rejects_{dataset})
        GROUP BY csv_line
    """)


def _validate_dimension(con: duckdb.DuckDBPyConnection, dataset: str) -> None:
    cols = ", ".join(DATASET_COLUMNS[dataset])
    con.execute(f"""
        CREATE OR REPLACE TABLE flagged_{dataset} AS
        WITH distinct_rows AS (
            SELECT {cols}, count(*) AS copies, {DIMENSION_KEY[dataset]} AS key
            FROM raw_{dataset} GROUP BY ALL
        )
        SELECT *, CASE
            WHEN key IS NULL THEN 'missing_key'
            WHEN count(*) OVER (PARTITION BY key) > 1 THEN 'conflicting_key'
        END AS reason
        FROM distinct_rows
    """)
    con.execute(
        f"CREATE OR REPLACE TABLE valid_{dataset} AS "
        f"SELECT * FROM flagged_{dataset} WHERE reason IS NULL"
    )


def _validate_transactions(con: duckdb.DuckDBPyConnection) -> None:
    cols = ", ".join(DATASET_COLUMNS["rental_transactions"])
    con.execute(f"""
        CREATE OR REPLACE TABLE flagged_rental_transactions AS
        WITH distinct_rows AS (
            SELECT {cols}, count(*) AS copies FROM raw_rental_transactions GROUP BY ALL
        ), parsed AS (
            SELECT *,
                as_text(rental_id) AS rid, as_text(user_id) AS uid, as_text(vehicle_id) AS vid,
                as_timestamp(rental_start_time) AS t_start,
                as_timestamp(rental_end_time) AS t_end,
                as_int(pickup_location) AS pickup, as_int(dropoff_location) AS dropoff,
                as_double(total_amount) AS amount
            FROM distinct_rows
        ), known AS (
            SELECT p.*,
                count(*) FILTER (WHERE p.rid IS NOT NULL) OVER (PARTITION BY p.rid) AS id_rows,
                u.key IS NOT NULL AS user_ok, v.key IS NOT NULL AS vehicle_ok,
                lp.key IS NOT NULL AS pickup_ok, ld.key IS NOT NULL AS dropoff_ok
            FROM parsed p
            LEFT JOIN (SELECT key FROM valid_users) u ON p.uid = u.key
            LEFT JOIN (SELECT key FROM valid_vehicles) v ON p.vid = v.key
            LEFT JOIN (SELECT key FROM valid_locations) lp ON p.pickup = lp.key
            LEFT JOIN (SELECT key FROM valid_locations) ld ON p.dropoff = ld.key
        )
        SELECT *, CASE
            WHEN rid IS NULL THEN 'missing_rental_id'
            WHEN uid IS NULL THEN 'unparseable_user_id'
            WHEN vid IS NULL THEN 'unparseable_vehicle_id'
            WHEN t_start IS NULL THEN 'unparseable_rental_start_time'
            WHEN t_end IS NULL THEN 'unparseable_rental_end_time'
            WHEN pickup IS NULL THEN 'unparseable_pickup_location'
            WHEN dropoff IS NULL THEN 'unparseable_dropoff_location'
            WHEN amount IS NULL OR isnan(amount) OR isinf(amount) OR abs(amount) >= 1e28
                THEN 'unparseable_total_amount'
            WHEN t_end <= t_start THEN 'non_positive_duration'
            WHEN amount < 0 THEN 'negative_amount'
            WHEN NOT user_ok THEN 'unknown_user'
            WHEN NOT vehicle_ok THEN 'unknown_vehicle'
            WHEN NOT pickup_ok THEN 'unknown_pickup_location'
            WHEN NOT dropoff_ok THEN 'unknown_dropoff_location'
            WHEN id_rows > 1 THEN 'conflicting_rental_id'
        END AS reason
        FROM known
    """)
    con.execute("""
        CREATE OR REPLACE TABLE rentals AS
        SELECT rid AS rental_id, uid AS user_id, vid AS vehicle_id, t_start, t_end,
               pickup, dropoff, amount, epoch(t_end) - epoch(t_start) AS seconds
        FROM flagged_rental_transactions WHERE reason IS NULL
    """)


def _counts(con: duckdb.DuckDBPyConnection, dataset: str) -> dict:
    rows = con.execute(f"""
        SELECT reason, count(*) AS n, sum(copies) AS copies FROM flagged_{dataset} GROUP BY reason
        UNION ALL
        SELECT 'malformed_row', count(*), coalesce(sum(copies), 0) FROM bad_{dataset}
    """).fetchall()
    counts: dict[str, Any] = {
        "input_rows": 0,
        "valid_rows": 0,
        "rejected_rows": 0,
        "deduplicated_rows": 0,
        "rejected_by_reason": {},
    }
    for reason, n, copies in rows:
        counts["input_rows"] += int(copies)
        counts["deduplicated_rows"] += int(copies) - int(n)
        if reason is None:
            counts["valid_rows"] += int(n)
        else:
            counts["rejected_rows"] += int(n)
            by_reason = counts["rejected_by_reason"]
            by_reason[reason] = by_reason.get(reason, 0) + int(n)
    return counts


KPI_SQL = {
    "location_performance": """
        WITH p AS (
            SELECT pickup AS location_id, money_sum(amount) AS total_revenue,
                   count(*) AS transaction_count, min(amount) AS mn, max(amount) AS mx,
                   count(DISTINCT vehicle_id) AS uv, count(DISTINCT user_id) AS uu,
                   avg(seconds) / 3600.0 AS avg_hours
            FROM rentals GROUP BY pickup
        ), d AS (SELECT dropoff AS location_id, count(*) AS n FROM rentals GROUP BY dropoff)
        SELECT l.key AS location_id, l.location_name, l.city, l.state,
               coalesce(p.total_revenue, 0.0) AS total_revenue,
               coalesce(p.transaction_count, 0) AS transaction_count,
               p.total_revenue / p.transaction_count AS avg_transaction_amount,
               p.mn AS min_transaction_amount, p.mx AS max_transaction_amount,
               coalesce(p.uv, 0) AS unique_vehicles, coalesce(p.uu, 0) AS unique_users,
               p.avg_hours AS avg_rental_hours, coalesce(d.n, 0) AS dropoff_count
        FROM valid_locations l
        LEFT JOIN p ON p.location_id = l.key LEFT JOIN d ON d.location_id = l.key
        ORDER BY location_id
    """,
    "vehicle_type_performance": """
        WITH period AS (SELECT (epoch(max(t_end)) - epoch(min(t_start))) / 3600.0 AS hours
                        FROM rentals),
        fleet AS (SELECT vehicle_type, count(*) AS fleet_size FROM valid_vehicles GROUP BY ALL),
        t AS (
            SELECT v.vehicle_type, count(*) AS n, money_sum(r.amount) AS revenue,
                   sum(r.seconds) / 3600.0 AS hours, min(r.seconds) / 3600.0 AS mn,
                   max(r.seconds) / 3600.0 AS mx, count(DISTINCT r.vehicle_id) AS uv
            FROM rentals r JOIN valid_vehicles v ON v.key = r.vehicle_id GROUP BY ALL
        )
        SELECT f.vehicle_type, f.fleet_size, coalesce(t.n, 0) AS rental_count,
               coalesce(t.revenue, 0.0) AS total_revenue,
               t.revenue / t.n AS avg_revenue_per_rental,
               coalesce(t.hours, 0.0) AS total_rental_hours,
               t.hours / t.n AS avg_rental_hours, t.mn AS min_rental_hours,
               t.mx AS max_rental_hours, coalesce(t.uv, 0) AS unique_vehicles_rented,
               coalesce(t.hours, 0.0) / (f.fleet_size * period.hours) AS utilization_rate
        FROM fleet f LEFT JOIN t ON t.vehicle_type IS NOT DISTINCT FROM f.vehicle_type
        CROSS JOIN period ORDER BY f.vehicle_type
    """,
    "user_metrics": """
        WITH u AS (
            SELECT user_id, count(*) AS n, money_sum(amount) AS spent, min(amount) AS mn,
                   max(amount) AS mx, sum(seconds) / 3600.0 AS hours,
                   min(t_start) AS first_start, max(t_start) AS last_start
            FROM rentals GROUP BY user_id
        )
        SELECT u.user_id, v.first_name, v.last_name, u.n AS rental_count,
               u.spent AS total_spent, u.spent / u.n AS avg_spent_per_rental,
               u.mn AS min_spent, u.mx AS max_spent, u.hours AS total_rental_hours,
               u.hours / u.n AS avg_rental_hours, u.first_start AS first_rental_start,
               u.last_start AS last_rental_start,
               dense_rank() OVER (ORDER BY u.spent DESC) AS spend_rank
        FROM u LEFT JOIN valid_users v ON v.key = u.user_id ORDER BY u.user_id
    """,
    "daily_metrics": """
        SELECT t_start::DATE AS rental_date, count(*) AS transaction_count,
               money_sum(amount) AS total_revenue, money_sum(amount) / count(*)
                   AS avg_transaction_amount,
               min(amount) AS min_transaction_amount, max(amount) AS max_transaction_amount,
               count(DISTINCT user_id) AS unique_users,
               count(DISTINCT vehicle_id) AS unique_vehicles,
               sum(seconds) / 3600.0 AS total_rental_hours,
               year(rental_date) AS year, month(rental_date) AS month
        FROM rentals GROUP BY ALL ORDER BY rental_date
    """,
}


def run_reference(raw_dir: Path | str, threads: int | None = None) -> ReferenceResult:
    """Validate ``raw_dir/<dataset>/*.csv`` and compute the four KPI tables in DuckDB."""
    raw_dir = Path(raw_dir)
    result = ReferenceResult()
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(MACROS)
    started = time.monotonic()
    for dataset in DATASET_COLUMNS:
        _load(con, raw_dir, dataset)
    for dataset in ("locations", "vehicles", "users"):
        _validate_dimension(con, dataset)
    _validate_transactions(con)
    result.counts = {dataset: _counts(con, dataset) for dataset in DATASET_COLUMNS}
    result.seconds["validate"] = time.monotonic() - started
    for name, sql in KPI_SQL.items():
        t0 = time.monotonic()
        result.tables[name] = con.execute(sql).df()
        result.seconds[name] = time.monotonic() - t0
    result.seconds["total"] = time.monotonic() - started
    con.close()
    return result
