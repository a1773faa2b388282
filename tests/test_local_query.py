"""``rental-kpis query`` on the local backend, on lakes that are not as the pipeline left them:
a table whose Parquet file was deleted or cut short after the crawl. Each lake is written by
Spark (``write_world_tables``) and crawled, then damaged for real; the command runs as a user
does (a subprocess)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_runner import run_cli
from test_catalog_and_queries import write_world_tables
from test_security_paths import assert_one_line_error

from rental_kpis.layout import Lake
from rental_kpis.local import glue as catalog


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
