"""Comparing KPI tables across engines: same rows, same keys, floats within a relative tolerance."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

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
