"""Comparing KPI tables across engines: same rows, same keys, floats within a relative tolerance."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from rental_kpis.devtools.datagen import MANIFEST
from rental_kpis.devtools.reference import run_reference
from rental_kpis.layout import DATASETS, TABLES, Lake

# SPEC §4: every KPI table's columns, in order, with their types (Spark and Glue spell these alike).
SPEC_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "location_performance": [
        ("location_id", "int"),
        ("location_name", "string"),
        ("city", "string"),
        ("state", "string"),
        ("total_revenue", "double"),
        ("transaction_count", "bigint"),
        ("avg_transaction_amount", "double"),
        ("min_transaction_amount", "double"),
        ("max_transaction_amount", "double"),
        ("unique_vehicles", "bigint"),
        ("unique_users", "bigint"),
        ("avg_rental_hours", "double"),
        ("dropoff_count", "bigint"),
    ],
    "vehicle_type_performance": [
        ("vehicle_type", "string"),
        ("fleet_size", "bigint"),
        ("rental_count", "bigint"),
        ("total_revenue", "double"),
        ("avg_revenue_per_rental", "double"),
        ("total_rental_hours", "double"),
        ("avg_rental_hours", "double"),
        ("min_rental_hours", "double"),
        ("max_rental_hours", "double"),
        ("unique_vehicles_rented", "bigint"),
        ("utilization_rate", "double"),
    ],
    "user_metrics": [
        ("user_id", "string"),
        ("first_name", "string"),
        ("last_name", "string"),
        ("rental_count", "bigint"),
        ("total_spent", "double"),
        ("avg_spent_per_rental", "double"),
        ("min_spent", "double"),
        ("max_spent", "double"),
        ("total_rental_hours", "double"),
        ("avg_rental_hours", "double"),
        ("first_rental_start", "timestamp"),
        ("last_rental_start", "timestamp"),
        ("spend_rank", "int"),
    ],
    "daily_metrics": [
        ("rental_date", "date"),
        ("transaction_count", "bigint"),
        ("total_revenue", "double"),
        ("avg_transaction_amount", "double"),
        ("min_transaction_amount", "double"),
        ("max_transaction_amount", "double"),
        ("unique_users", "bigint"),
        ("unique_vehicles", "bigint"),
        ("total_rental_hours", "double"),
    ],
}

KEYS = {
    "location_performance": ["location_id"],
    "vehicle_type_performance": ["vehicle_type"],
    "user_metrics": ["user_id"],
    "daily_metrics": ["rental_date"],
}


def read_table(uri: str) -> pd.DataFrame:
    """A processed table as pandas, Hive partitions (year, month) read back as ints."""
    return duckdb.sql(
        f"SELECT * FROM read_parquet('{uri}/**/*.parquet', hive_partitioning = true)"
    ).df()


def assert_same_table(
    name: str, actual: pd.DataFrame, expected: pd.DataFrame, rtol: float = 1e-9
) -> None:
    keys = KEYS[name]
    actual = actual[list(expected.columns)].sort_values(keys).reset_index(drop=True)
    expected = expected.sort_values(keys).reset_index(drop=True)
    assert len(actual) == len(expected), f"{name}: {len(actual)} rows vs {len(expected)}"
    for column in expected.columns:
        a, e = actual[column], expected[column]
        if pd.api.types.is_float_dtype(e) or pd.api.types.is_float_dtype(a):
            a, e = a.astype(float).to_numpy(), e.astype(float).to_numpy()
            close = np.isclose(a, e, rtol=rtol, atol=0.0, equal_nan=True)
            assert close.all(), f"{name}.{column}: {a[~close][:5]} vs {e[~close][:5]}"
        elif pd.api.types.is_datetime64_any_dtype(e):
            assert (pd.to_datetime(a).to_numpy() == pd.to_datetime(e).to_numpy()).all(), column
        elif pd.api.types.is_integer_dtype(e):
            assert (a.astype("int64").to_numpy() == e.astype("int64").to_numpy()).all(), column
        else:
            assert a.astype(str).tolist() == e.astype(str).tolist(), f"{name}.{column}"


def assert_matches_generator(raw: Path, lake: Lake, run_id: str) -> None:
    """Run ``run_id`` accounted for every row as the generator injected them, and wrote the
    tables the DuckDB reference computes from the same files."""
    manifest = json.loads((raw / MANIFEST).read_text())
    validated = json.loads(Path(lake.run_summary(run_id, "validate_raw")).read_text())
    assert {n: validated["datasets"][n] for n in DATASETS} == manifest["datasets"]
    reference = run_reference(raw)
    for table in TABLES:
        assert_same_table(table, read_table(lake.processed(table)), reference.tables[table])
