"""Hostile names and paths (issue 14, items 11 and 12): nothing executed, nothing written astray.

Every test here is an attack that worked before: a lake under a folder whose name breaks or
injects SQL, a lake copy that silently queried the original, a query name or a run id that
walks out of its folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from cli_runner import run_cli
from test_catalog_and_queries import (
    EXPECTED_ANSWERS,
    EXPECTED_TYPES,
    approx_answers,
    write_world_tables,
)

from rental_kpis import queries
from rental_kpis.errors import InvalidRunId, UnknownName
from rental_kpis.layout import Lake, check_run_id, new_run_id
from rental_kpis.local import athena as querying
from rental_kpis.local import glue as catalog
from rental_kpis.local.runner import run_local
from rental_kpis.spark.steps import parse_args
from rental_kpis.walkthrough.local_backend import LocalBackend


def assert_one_line_error(done, *fragments: str) -> None:
    """Exit 2 and one line ``rental-kpis: error: …`` on stderr, naming each fragment."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("rental-kpis: error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


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


# ----------------------------------------------------------------- query names


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


# ----------------------------------------------------------------- run ids


@pytest.mark.parametrize("run_id", ["r1", "nbtest-run", "e2e-1", "A_b-9" * 16])
def it_accepts_run_ids_of_the_strict_pattern(run_id):
    assert check_run_id(run_id) == run_id


def it_accepts_the_run_ids_it_makes():
    """Made here, not at collection: pytest-xdist workers must collect the same test ids."""
    made = new_run_id()
    assert check_run_id(made) == made


@pytest.mark.parametrize(
    "run_id",
    ["", ".", "..", "../x", "a/b", "/abs", "a\\b", "a b", "x\n", "-x", "_x", "é", "a" * 81, "a.b"],
)
def it_refuses_any_other_run_id(run_id):
    with pytest.raises(InvalidRunId, match="run id"):
        check_run_id(run_id)
    with pytest.raises(InvalidRunId):
        Lake("s3://bucket").run_summary(run_id, "validate_raw")


def it_refuses_a_traversing_run_id_on_every_command(tmp_path, processed):
    lake = lake_under(tmp_path / "lake", processed)
    catalog.crawl(lake)
    empty_raw = tmp_path / "raw"
    empty_raw.mkdir()
    escape = "../../escaped"
    commands = {
        "run": ["run", "--raw", str(empty_raw), "--lake", lake.root, "--run-id", escape],
        "query": ["query", "monthly_revenue", "--lake", lake.root, "--run-id", "../" + escape],
        "report": [
            "report", "--lake", lake.root, "--raw", str(empty_raw),
            "--out", str(tmp_path / "out"), "--run-id", escape,
        ],
    }  # fmt: skip
    for argv in commands.values():
        done = run_cli(*argv, timeout=300)
        assert_one_line_error(done, "run id", repr(argv[-1]))
    assert not list(tmp_path.rglob("escaped*")), list(tmp_path.rglob("escaped*"))
    assert not (tmp_path / "out").exists()


def it_refuses_a_traversing_run_id_on_aws_run_before_calling_aws(tmp_path):
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # nothing listens: no call may be needed
        "AWS_MAX_ATTEMPTS": "1",
    }
    done = run_cli(
        "aws", "run", "--bucket", "b", "--region", "eu-west-1", "--run-id", "../x", env=env
    )
    assert_one_line_error(done, "run id", "'../x'")


def it_refuses_a_traversing_run_id_in_the_step_scripts_and_the_library(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_args("validate_raw", ["--lake-root", str(tmp_path), "--run-id", "../x"])
    assert exited.value.code == 2
    assert "run id" in capsys.readouterr().err
    assert parse_args("validate_raw", ["--lake-root", "s3://b", "--run-id", "r1"]).run_id == "r1"

    with pytest.raises(InvalidRunId):
        run_local(None, tmp_path / "lake", run_id="../../x")
    assert not (tmp_path / "lake").exists()


def it_refuses_a_traversing_run_id_in_the_notebook_backend(tmp_path):
    # A run record outside the lake that a notebook's run_id parameter could point at.
    outside = tmp_path / "x"
    outside.mkdir()
    (outside / "run.json").write_text('{"run_id": "x", "stages": {}}')
    (outside / "validate_raw.json").write_text("{}")
    backend = LocalBackend(tmp_path / "lake", tmp_path / "raw")
    with pytest.raises(InvalidRunId):
        backend.run_record("../../x")
    with pytest.raises(InvalidRunId):
        backend.step_summary("../../x", "validate_raw")
    with pytest.raises(InvalidRunId):
        backend.run_steps("../../x")
