"""Where the local catalog points (``local/glue``) and what a query may name: a lake under any
folder name, copied or moved, is crawled and queried as its own; neither a table folder nor a
catalog entry reaches outside it; only the named queries run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from cli_runner import assert_one_line_error, run_cli
from test_catalog_and_queries import (
    EXPECTED_ANSWERS,
    EXPECTED_TYPES,
    approx_answers,
    write_world_tables,
)

from rental_kpis import queries
from rental_kpis.errors import UnknownName
from rental_kpis.layout import Lake
from rental_kpis.local import athena as querying
from rental_kpis.local import glue as catalog
from rental_kpis.walkthrough.local_backend import LocalBackend


@pytest.fixture(scope="module")
def processed(spark, tmp_path_factory) -> Path:
    """A ``processed/`` zone with the world's four KPI tables, written once by Spark."""
    lake = Lake(str(tmp_path_factory.mktemp("source") / "lake"))
    write_world_tables(spark, lake)
    return Path(lake.uri("processed"))


def lake_under(parent: Path, processed: Path) -> Lake:
    """A fresh lake at ``parent/lake`` holding a copy of the world's tables."""
    lake = Lake(str(parent / "lake"))
    shutil.copytree(processed, lake.uri("processed"))
    return lake


def answers(lake: Lake) -> dict[str, list[tuple]]:
    return {name: querying.run_named_query(lake, name).rows for name in queries.names()}


HOSTILE_FOLDERS = [
    "o'neil",  # a quote: the pasted literal ended early and crawl died
    "x'); DROP TABLE main.glue_tables; --",  # SQL in a folder name
    "b[ab]c",  # a glob: the pasted pattern matched the sibling lake bac/ instead
    "st*r",  # a glob that matches itself and every sibling
    "x=1",  # a Hive-looking folder above the lake: no extra partition column
    "a,b",  # a comma, which DuckDB's file_search_path would split
]


@pytest.mark.parametrize("folder", HOSTILE_FOLDERS)
def it_crawls_and_queries_a_lake_under_a_hostile_folder(processed, tmp_path, folder):
    # Next to a glob, a decoy lake that the glob matches, with one table emptied: reading it
    # instead (as the pasted pattern did) changes an answer.
    decoy = {"b[ab]c": "bac", "st*r": "star"}.get(folder)
    if decoy:
        empty = Path(lake_under(tmp_path / decoy, processed).processed("vehicle_type_performance"))
        for part in empty.glob("*.parquet"):
            part.unlink()
    lake = lake_under(tmp_path / folder, processed)

    report = catalog.crawl(lake)

    assert report.added == sorted(EXPECTED_TYPES)
    tables = {t.name: t for t in catalog.get_tables(lake)}
    for name, (columns, keys) in EXPECTED_TYPES.items():
        assert (tables[name].columns, tables[name].partition_keys) == (columns, keys), name
        assert tables[name].location == lake.processed(name)
    assert answers(lake) == approx_answers(EXPECTED_ANSWERS)


def it_prints_a_query_of_a_lake_under_a_quote_from_the_command_line(processed, tmp_path):
    lake = lake_under(tmp_path / "o'neil", processed)
    crawled = run_cli("crawl", "--lake", lake.root)
    assert crawled.returncode == 0, crawled.stderr
    done = run_cli("query", "most_rented_vehicle_type", "--lake", lake.root, "--run-id", "r1")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "vehicle_type,rental_count,total_revenue,fleet_size\nbasic,3,100.0,2\n"
    assert Path(lake.uri("query-results", "most_rented_vehicle_type", "r1.csv")).exists()


def it_reads_processed_tables_of_a_lake_under_a_quote_for_the_notebooks(processed, tmp_path):
    lake = lake_under(tmp_path / "o'neil", processed)
    catalog.crawl(lake)
    backend = LocalBackend(lake.root, tmp_path)
    for name, (columns, keys) in EXPECTED_TYPES.items():
        direct = backend.processed(name)  # notebook 02, before any crawl
        assert list(direct.columns) == [c for c, _ in columns + keys]
        pd.testing.assert_frame_equal(direct, backend.table(name))  # through the catalog


def it_skips_a_table_folder_whose_name_would_inject_sql(processed, tmp_path):
    lake = lake_under(tmp_path, processed)
    evil = 'evil" AS SELECT 1; DROP TABLE main.glue_tables; --'
    shutil.copytree(lake.processed("user_metrics"), lake.processed(evil))

    report = catalog.crawl(lake)

    assert report.added == sorted(EXPECTED_TYPES)
    assert report.skipped == {
        evil: "not a table name (lowercase letters, digits and _ only, as Athena requires)"
    }
    assert sorted(t.name for t in catalog.get_tables(lake)) == sorted(EXPECTED_TYPES)
    assert answers(lake) == approx_answers(EXPECTED_ANSWERS)


def it_queries_its_own_data_when_the_lake_is_copied(processed, tmp_path):
    original = lake_under(tmp_path / "original", processed)
    catalog.crawl(original)
    copy = Lake(str(tmp_path / "copy"))
    shutil.copytree(original.root, copy.root)

    # The original changes (here: it is gone); the copy must not notice.
    shutil.rmtree(original.root)

    assert answers(copy) == approx_answers(EXPECTED_ANSWERS)
    assert {t.location for t in catalog.get_tables(copy)} == {
        copy.processed(name) for name in EXPECTED_TYPES
    }
    assert catalog.crawl(copy).unchanged == sorted(EXPECTED_TYPES)


def it_stores_locations_relative_to_the_lake_and_updates_a_moved_one(processed, tmp_path):
    lake = lake_under(tmp_path, processed)
    catalog.crawl(lake)
    with duckdb.connect(str(catalog.catalog_path(lake))) as con:
        stored = dict(con.execute("SELECT name, location FROM main.glue_tables").fetchall())
        assert stored == {name: f"processed/{name}" for name in EXPECTED_TYPES}
        # A catalog whose entry points elsewhere (an older catalog, a hand edit): re-crawling
        # compares locations, not only columns.
        con.execute(
            "UPDATE main.glue_tables SET location = ? WHERE name = 'user_metrics'",
            ["/somewhere/else/processed/user_metrics"],
        )

    report = catalog.crawl(lake)

    assert report.updated == ["user_metrics"]
    assert {t.name: t.location for t in catalog.get_tables(lake)}["user_metrics"] == (
        lake.processed("user_metrics")
    )


def it_refuses_a_catalog_entry_that_points_outside_the_lake(processed, tmp_path):
    lake = lake_under(tmp_path / "lake", processed)
    catalog.crawl(lake)
    with duckdb.connect(str(catalog.catalog_path(lake))) as con:
        con.execute(
            "UPDATE main.glue_tables SET location = ? WHERE name = 'user_metrics'",
            ["../../elsewhere/user_metrics"],
        )
    done = run_cli("query", "top_spending_users", "--lake", lake.root)
    assert_one_line_error(done, "user_metrics", "rental-kpis crawl")


def it_runs_only_the_named_queries(tmp_path, processed):
    lake = lake_under(tmp_path / "lake", processed)
    catalog.crawl(lake)
    evil = tmp_path / "evil.sql"
    evil.write_text("-- not ours\nSELECT 42 AS pwned\n")
    traversal = os.path.relpath(tmp_path / "evil", queries.QUERY_DIR)
    assert traversal.startswith("..")

    for name in (traversal, str(tmp_path / "evil")):
        done = run_cli("query", name, "--lake", lake.root)
        assert_one_line_error(done, "no named query", "daily_revenue_trend")
        assert "pwned" not in done.stdout
        with pytest.raises(UnknownName):
            queries.load(name)
