"""The local crawler and the named queries on a lake built from the hand-made world."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest
from cli_runner import run_cli
from tables import SPEC_COLUMNS
from world import make_world

from rental_kpis import cli, queries
from rental_kpis.layout import Lake
from rental_kpis.local import athena as querying
from rental_kpis.local import glue as catalog
from rental_kpis.spark import kpis
from rental_kpis.spark.steps import write_parquet, write_table

# The catalog's view: SPEC §4 columns, and the partition keys taken from k=v folders.
EXPECTED_TYPES = {
    name: (columns, [("year", "bigint"), ("month", "bigint")] if name == "daily_metrics" else [])
    for name, columns in SPEC_COLUMNS.items()
}


def write_world_tables(spark, lake: Lake) -> None:
    world = make_world(spark)
    rentals = world["rentals"]
    tables = {
        "location_performance": kpis.location_performance(rentals, world["locations"]),
        "vehicle_type_performance": kpis.vehicle_type_performance(rentals, world["vehicles"]),
        "user_metrics": kpis.user_metrics(rentals, world["users"]),
        "daily_metrics": kpis.daily_metrics(rentals),
    }
    for name, df in tables.items():
        write_table(df, lake, name)


@pytest.fixture(scope="module")
def world_lake(spark, tmp_path_factory) -> Lake:
    lake = Lake(str(tmp_path_factory.mktemp("world") / "lake"))
    write_world_tables(spark, lake)
    catalog.crawl(lake)
    return lake


def it_registers_every_table_with_glue_types_and_partition_keys(world_lake):
    tables = {t.name: t for t in catalog.get_tables(world_lake)}
    assert sorted(tables) == sorted(EXPECTED_TYPES)
    for name, (columns, keys) in EXPECTED_TYPES.items():
        assert tables[name].columns == columns, name
        assert tables[name].partition_keys == keys, name
        assert tables[name].location == world_lake.processed(name)


def it_skips_an_unfinished_folder_and_drops_a_vanished_one(spark, tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    write_world_tables(spark, lake)
    assert catalog.crawl(lake).added == sorted(EXPECTED_TYPES)
    Path(lake.processed("user_metrics"), "_SUCCESS").unlink()
    half = Path(lake.processed("half_written"))
    half.mkdir()
    (half / "part-0.parquet").write_bytes(b"PAR1")
    report = catalog.crawl(lake)
    assert report.skipped == {
        "half_written": "no _SUCCESS: the write did not finish",
        "user_metrics": "no _SUCCESS: the write did not finish",
    }
    assert report.removed == ["user_metrics"]
    assert [t.name for t in catalog.get_tables(lake)] == [
        "daily_metrics",
        "location_performance",
        "vehicle_type_performance",
    ]


def it_picks_up_a_changed_schema_on_recrawl(spark, tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    world = make_world(spark)
    table = kpis.vehicle_type_performance(world["rentals"], world["vehicles"])
    write_parquet(table, lake.processed("vehicle_type_performance"))
    assert catalog.crawl(lake).added == ["vehicle_type_performance"]
    write_parquet(
        table.withColumn("note", table["vehicle_type"]), lake.processed("vehicle_type_performance")
    )
    report = catalog.crawl(lake)
    assert report.updated == ["vehicle_type_performance"]
    (info,) = catalog.get_tables(lake)
    assert info.columns[-1] == ("note", "string")
    result = querying.run_sql(
        lake, "adhoc", "SELECT note FROM rental_marketplace.vehicle_type_performance ORDER BY 1"
    )
    assert result.rows == [("basic",), ("high_end",), ("premium",)]
    assert catalog.crawl(lake).unchanged == ["vehicle_type_performance"]


# The answers, worked by hand from the world (tests/test_kpis.py docstring).
EXPECTED_ANSWERS = {
    "highest_revenue_location": [(2, "Station Plaza, Dallas #2", "Dallas", "TX", 90.0, 2)],
    "most_rented_vehicle_type": [("basic", 3, 100.0, 2)],
    "top_spending_users": [
        ("U1", "Ana", "Lee", 50.0, 2, 1),
        ("U3", "Cy", "Wu", 50.0, 1, 1),
        ("U2", "Bo", "Kim", 40.0, 1, 2),
    ],
    "daily_revenue_trend": [
        (date(2024, 3, 1), 50.0, 2, 50.0),
        (date(2024, 3, 2), 50.0, 1, 50.0),
        (date(2024, 3, 10), 40.0, 1, 140.0 / 3),
    ],
    "revenue_by_city": [
        ("Dallas", "TX", 90.0, 2, 1),
        ("Austin", "TX", 50.0, 2, 2),
        ("Miami", "FL", 0.0, 0, 1),
    ],
    "vehicle_type_utilization": [
        ("basic", 2, 10.0, 10.0 / 419),
        ("premium", 1, 2.0, 2.0 / 209.5),
        ("high_end", 1, 0.0, 0.0),
    ],
    "monthly_revenue": [("2024-03", 140.0, 4)],
    # U1: first start 2024-03-01 10:00, last 23:00 -> 13 whole hours
    "returning_users_span": [("U1", 2, 13)],
}


def approx_rows(rows: list[tuple], rel: float = 1e-12) -> list[tuple]:
    """``rows`` with each float compared within ``rel`` and every other value exactly:
    pytest.approx descends into no nested container and takes no date."""
    return [
        tuple(pytest.approx(v, rel=rel) if isinstance(v, float) else v for v in row) for row in rows
    ]


def approx_answers(answers: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    return {name: approx_rows(rows) for name, rows in answers.items()}


def test_every_named_query_has_an_expected_answer():
    assert sorted(EXPECTED_ANSWERS) == queries.names()
    assert {
        "highest_revenue_location",
        "most_rented_vehicle_type",
        "top_spending_users",
        "daily_revenue_trend",
        "revenue_by_city",
        "vehicle_type_utilization",
    } <= set(queries.names())


@pytest.mark.parametrize("name", sorted(EXPECTED_ANSWERS))
def it_answers_the_named_query(world_lake, name):
    result = querying.run_named_query(world_lake, name, run_id="r1")
    assert result.rows == approx_rows(EXPECTED_ANSWERS[name])
    saved = Path(world_lake.uri("query-results", name, "r1.csv")).read_text().splitlines()
    assert saved[0] == ",".join(result.columns)
    assert len(saved) == 1 + len(result.rows)


def it_explains_a_named_query_without_running_it(world_lake):
    from rental_kpis.walkthrough.local_backend import LocalBackend

    lake = Path(world_lake.root)
    before = sorted((p, p.stat().st_mtime_ns) for p in lake.rglob("*"))
    plan = LocalBackend(world_lake.root, "").query_plan("revenue_by_city")
    assert "hash group by" in plan.lower() and "order by" in plan.lower()
    assert sorted((p, p.stat().st_mtime_ns) for p in lake.rglob("*")) == before  # no result kept


def it_prints_a_query_as_csv_and_lists_the_queries(world_lake):
    done = run_cli("query", "most_rented_vehicle_type", "--lake", world_lake.root)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "vehicle_type,rental_count,total_revenue,fleet_size\nbasic,3,100.0,2\n"
    listing = run_cli("query", "--list").stdout.splitlines()
    assert len(listing) == len(queries.names())
    assert listing[0].split()[0] == "daily_revenue_trend"
    assert "7-day rolling mean" in listing[0]


def it_names_an_unknown_query_and_a_missing_catalog(tmp_path):
    done = run_cli("query", "nope", "--lake", str(tmp_path))
    assert done.returncode == 2
    assert "no named query 'nope'" in done.stderr
    done = run_cli("query", "monthly_revenue", "--lake", str(tmp_path))
    assert done.returncode == 2
    assert f"no catalog at {tmp_path}/catalog.duckdb" in done.stderr


# ---------------------------------------------------------------- CSV for people

# Cells a spreadsheet runs as formulas (OWASP, "CSV Injection"), as names and ids can hold them.
FORMULAS = ['=HYPERLINK("http://x.test","click")', "+cmd|' /C calc'!A0", "@SUM(A1:A9)", "-2+3",
            "\tTab", "\rReturn"]  # fmt: skip


def hostile_city_lake(root: Path) -> Lake:
    """A lake whose only table, location_performance, has a city named after each formula."""
    lake = Lake(str(root / "lake"))
    folder = Path(lake.processed("location_performance"))
    folder.mkdir(parents=True)
    rows = ", ".join(
        f"({i}, 'Lot {i}', ?, 'CO', {100.0 * (len(FORMULAS) - i)}, 1)" for i in range(len(FORMULAS))
    )
    duckdb.execute(
        f"COPY (SELECT * FROM (VALUES {rows}) AS t(location_id, location_name, city, state,"
        f" total_revenue, transaction_count)) TO '{folder / 'part-0.parquet'}' (FORMAT parquet)",
        FORMULAS,
    )
    (folder / "_SUCCESS").touch()
    catalog.crawl(lake)
    return lake


SAFE_CITY_CSV = (
    "city,state,total_revenue,transaction_count,locations\n"
    + "".join(
        f"{row},CO,{600.0 - 100 * i},1,1\n"
        for i, row in enumerate(
            ['"\'=HYPERLINK(""http://x.test"",""click"")"', "'+cmd|' /C calc'!A0", "'@SUM(A1:A9)",
             "'-2+3", "\"'\tTab\"", "\"'\rReturn\""]
        )
    )
)  # fmt: skip


def it_neutralises_formulas_in_the_query_results_it_keeps_and_keeps_the_rows_exact(tmp_path):
    lake = hostile_city_lake(tmp_path)
    result = querying.run_named_query(lake, "revenue_by_city", run_id="r1")
    assert [row[0] for row in result.rows] == FORMULAS
    assert result.rows[0] == (FORMULAS[0], "CO", 600.0, 1, 1)
    saved = Path(lake.uri("query-results", "revenue_by_city", "r1.csv"))
    assert saved.read_bytes().decode() == SAFE_CITY_CSV


def it_neutralises_formulas_in_what_query_prints(tmp_path, capsys):
    lake = hostile_city_lake(tmp_path)
    assert cli.main(["query", "revenue_by_city", "--lake", lake.root]) == 0
    assert capsys.readouterr().out == SAFE_CITY_CSV  # in-process: CR read as written


def it_leaves_numbers_and_harmless_text_as_they_are():
    answer = querying.QueryResult("q", ["-a", "b"], [("a=b", -2.5), (None, 0), ("x-1", None)])
    assert answer.to_csv() == "'-a,b\na=b,-2.5\n,0\nx-1,\n"


def it_quotes_a_cell_that_a_semicolon_separated_spreadsheet_would_split():
    answer = querying.QueryResult("q", ["name"], [("Lot;=HYPERLINK(1)",), ("a;b",)])
    assert answer.to_csv() == 'name\n"Lot;=HYPERLINK(1)"\n"a;b"\n'


def it_quotes_a_cell_that_a_tab_separated_import_would_split():
    # split on TAB, "Lot<TAB>=8" would start a cell with "=": a formula
    answer = querying.QueryResult("q", ["v"], [("Lot\t=8",), ("a\tb",)])
    assert answer.to_csv() == 'v\n"Lot\t=8"\n"a\tb"\n'
