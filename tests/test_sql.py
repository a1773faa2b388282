"""Athena → DuckDB translation: each measured sqlglot gap, proved on DuckDB itself."""

from __future__ import annotations

import duckdb
import pytest

from rental_kpis.local.athena_sql import athena_to_duckdb, joda_to_strftime


def run(athena_sql: str) -> list[tuple]:
    return duckdb.sql(athena_to_duckdb(athena_sql)).fetchall()


def it_counts_whole_hours_elapsed_like_trino_not_boundaries_crossed():
    sql = (
        "SELECT date_diff('hour', TIMESTAMP '2024-01-01 08:30:00', TIMESTAMP '2024-01-01 20:00:00')"
    )
    assert duckdb.sql(sql).fetchall() == [(12,)]  # the trap: plain DuckDB says 12
    assert run(sql) == [(11,)]  # Trino (Athena) says 11


def it_truncates_negative_differences_toward_zero_like_trino():
    sql = (
        "SELECT date_diff('hour', TIMESTAMP '2024-01-01 20:00:00', "
        "TIMESTAMP '2024-01-01 08:30:00'), date_diff('day', DATE '2024-01-01', "
        "DATE '2024-03-01')"
    )
    assert run(sql) == [(-11, 60)]


def it_translates_format_datetime_patterns():
    sql = "SELECT format_datetime(TIMESTAMP '2024-03-05 07:08:09', 'yyyy-MM-dd''T''HH:mm:ss EEE')"
    assert run(sql) == [("2024-03-05T07:08:09 Tue",)]


@pytest.mark.parametrize(
    ("joda", "strftime"),
    [
        ("yyyy-MM", "%Y-%m"),
        ("dd/MM/yy HH:mm", "%d/%m/%y %H:%M"),
        ("MMMM yyyy", "%B %Y"),
        ("'Q' yyyy", "Q %Y"),
        ("hh:mm a", "%I:%M %p"),
    ],
)
def it_converts_joda_patterns(joda, strftime):
    assert joda_to_strftime(joda) == strftime


def it_drops_the_athena_catalog_name():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA rental_marketplace")
    con.execute("CREATE TABLE rental_marketplace.t AS SELECT 42 AS x")
    sql = 'SELECT x FROM "AwsDataCatalog"."rental_marketplace"."t"'
    with pytest.raises(duckdb.Error):
        con.execute(sql)
    assert con.execute(athena_to_duckdb(sql)).fetchall() == [(42,)]
    assert con.execute(
        athena_to_duckdb("SELECT x FROM awsdatacatalog.rental_marketplace.t")
    ).fetchall() == [(42,)]
