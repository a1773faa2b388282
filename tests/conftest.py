"""Shared fixtures: one local Spark session for the whole run, and small lakes to write into."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from rental_kpis.spark.schemas import column_names
from rental_kpis.spark.session import build_session
from rental_kpis.spark.validation import CORRUPT_RECORD

# Property-based tests (tests/test_csv_properties.py): every example runs Spark jobs, so `make
# test` takes a few, derandomized (the same ones on every run, so CI is repeatable), and `make
# fuzz` (HYPOTHESIS_PROFILE=fuzz) many more with fresh randomness before a release.
_SLOW_EXAMPLES = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile(
    "ci", max_examples=6, deadline=None, derandomize=True, suppress_health_check=_SLOW_EXAMPLES
)
settings.register_profile(
    "fuzz", max_examples=150, deadline=None, suppress_health_check=_SLOW_EXAMPLES
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# pyspark.testing imports pandas-on-Spark, which asks for this before any session starts.
os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")


# The longest test files (`make test PYTEST_ARGS=--junitxml=…`, times summed per file,
# 2026-12-03 evening), handed to the two workers first, longest first (`--dist loadfile
# --no-loadscope-reorder` keeps this order), so that the workers finish together: scheduled
# by their number of tests instead, the long files with few tests came last and one worker
# ran them while the other idled.
LONGEST_FILES_FIRST = [
    "test_notebooks_and_report.py",
    "test_notebook_order.py",
    "test_faults.py",
    "test_validation_paths.py",
    "test_emr_steps.py",
    "test_cluster_run.py",
    "test_local_run.py",
    "test_kpi_steps.py",
    "test_csv_properties.py",
    "test_standalone_cluster.py",
    "test_hostile_input.py",
    "test_validation.py",
    "test_pipeline_oracle.py",
    "test_catalog_and_queries.py",
    "test_security_paths.py",
    "test_user_errors.py",
    "test_aws_hardening.py",
    "test_aws_cli_e2e.py",
    "test_report_html.py",
    "test_kpis.py",
    "test_aws_stepfunctions.py",
    "test_validate_step.py",
    "test_parallel.py",
    "test_benchmark_harness.py",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest files first (``LONGEST_FILES_FIRST``); the others after, in their order."""
    rank = {name: i for i, name in enumerate(LONGEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = build_session("rental_kpis-tests", master="local[2]", small_input=True)
    session.sparkContext.setLogLevel("ERROR")
    # Tiny hand-made frames: one shuffle partition and no adaptive re-planning keep each
    # Spark job at a fraction of a second.
    session.conf.set("spark.sql.shuffle.partitions", "1")
    session.conf.set("spark.sql.adaptive.enabled", "false")
    yield session
    session.stop()


def raw_frame(spark: SparkSession, dataset: str, rows: list[dict]) -> DataFrame:
    """A raw-zone frame as ``readers.read_raw`` returns it: strings, plus the corrupt record."""
    names = [*column_names(dataset), CORRUPT_RECORD]
    schema = T.StructType([T.StructField(n, T.StringType(), True) for n in names])
    return spark.createDataFrame([tuple(row.get(n) for n in names) for row in rows], schema)


@pytest.fixture
def fake_aws_credentials(monkeypatch) -> str:
    """Dummy credentials and a region for moto; never a real account. Returns the region."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    return "eu-west-1"


@pytest.fixture
def glue_crawl_statuses(monkeypatch):
    """moto ends a crawl with LastCrawl.Status COMPLETED; AWS says SUCCEEDED, CANCELLED or
    FAILED (Glue API, LastCrawlInfo). Let moto's crawler take AWS's SUCCEEDED as an ended crawl."""
    from moto.glue.models import FakeCrawler

    original = FakeCrawler.status.fget

    def status(self) -> str:
        if self.crawls and self.crawls[-1].status == "SUCCEEDED":
            return "READY"
        return original(self)

    monkeypatch.setattr(FakeCrawler, "status", property(status))
