"""Shared fixtures: one local Spark session for the whole run, and small lakes to write into."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path

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


# Seconds per test file, measured by `make durations`. `make test` hands the longest files out
# first (`--dist loadfile --no-loadscope-reorder` keeps this order), so that the two workers
# finish together; a file not measured yet goes first, as it may be a long one.
DURATIONS = Path(__file__).with_name("durations.json")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest test files first, by ``durations.json``; files not in it before all others."""
    seconds = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    items.sort(key=lambda item: -seconds.get(item.path.name, math.inf))


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
