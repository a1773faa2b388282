"""``rental-kpis query`` on the local backend, on lakes that are not as the pipeline left them:
a table whose Parquet file was deleted or cut short after the crawl, and a lake the OS will not
let us write. Each lake is written by Spark (``write_world_tables``) and crawled, then damaged
or made read-only for real; the command runs as a user does (a subprocess)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_runner import assert_one_line_error, run_cli
from test_catalog_and_queries import write_world_tables
from test_cli_errors import read_only, run_cli_as_a_user, writable

from rental_kpis.layout import Lake
from rental_kpis.local import glue as catalog

MONTHLY_REVENUE_CSV = "month,total_revenue,transaction_count\n2024-03,140.0,4\n"


@pytest.fixture(scope="module")
def crawled(spark, tmp_path_factory) -> Lake:
    lake = Lake(str(tmp_path_factory.mktemp("crawled") / "lake"))
    write_world_tables(spark, lake)
    catalog.crawl(lake)
    return lake


@pytest.fixture
def lake(crawled, tmp_path) -> Lake:
    """A copy of the crawled lake, this test's to damage."""
    shutil.copytree(crawled.root, tmp_path / "lake")
    return Lake(str(tmp_path / "lake"))


def only_part_file(lake: Lake, table: str) -> Path:
    (part,) = catalog.parquet_files(Path(lake.processed(table)))
    return part


def snapshot(folder: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every path below ``folder`` with its modification time and, for a file, its bytes."""
    return {
        str(path): (path.stat().st_mtime_ns, path.read_bytes() if path.is_file() else None)
        for path in [folder, *folder.rglob("*")]
    }


# ---------------------------------------------------------------- a damaged table


def it_says_in_one_line_that_a_table_lost_its_parquet_file(lake):
    folder = Path(lake.processed("user_metrics"))
    only_part_file(lake, "user_metrics").unlink()
    done = run_cli("query", "top_spending_users", "--lake", lake.root)
    assert_one_line_error(done, f"table user_metrics at {folder}", "no Parquet file", "crawl")


@pytest.mark.parametrize("size", [0, 100])
def it_says_in_one_line_that_a_table_has_a_truncated_parquet_file(lake, size):
    part = only_part_file(lake, "user_metrics")
    with part.open("r+b") as handle:
        handle.truncate(size)
    done = run_cli("query", "top_spending_users", "--lake", lake.root)
    assert_one_line_error(done, "table user_metrics", str(part), "run the pipeline again")


# ---------------------------------------------------------------- a read-only lake


def it_answers_from_a_read_only_lake_and_changes_nothing_in_it(lake):
    root = Path(lake.root)
    read_only(root)
    before = snapshot(root)
    try:
        done = run_cli_as_a_user("query", "monthly_revenue", "--lake", lake.root)
        named = run_cli_as_a_user("query", "monthly_revenue", "--lake", lake.root, "--run-id", "r9")
    finally:
        after = snapshot(root)
        writable(root)
    assert (done.returncode, done.stderr, done.stdout) == (0, "", MONTHLY_REVENUE_CSV)
    assert (named.returncode, named.stderr, named.stdout) == (0, "", MONTHLY_REVENUE_CSV)
    assert after == before


def it_keeps_the_result_of_a_query_on_a_lake_it_can_write(lake):
    done = run_cli("query", "monthly_revenue", "--lake", lake.root)
    assert (done.returncode, done.stdout) == (0, MONTHLY_REVENUE_CSV)
    (kept,) = Path(lake.uri("query-results", "monthly_revenue")).iterdir()
    assert kept.read_text() == MONTHLY_REVENUE_CSV
