"""The whole Spark pipeline, through spark-submit, against the independent DuckDB reference."""

from __future__ import annotations

import pytest
from tables import assert_same_table, read_table

from rental_kpis.devtools.datagen import generate
from rental_kpis.devtools.reference import run_reference
from rental_kpis.layout import DATASETS, TABLES
from rental_kpis.local.runner import run_local


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    raw = tmp_path_factory.mktemp("raw100k")
    generate(raw, 100_000, seed=2024, defect_rate=0.0002)
    return raw


@pytest.fixture(scope="module")
def spark_run(generated, tmp_path_factory):
    return run_local(generated, tmp_path_factory.mktemp("lake"), run_id="oracle")


@pytest.fixture(scope="module")
def reference(generated):
    return run_reference(generated)


def it_runs_every_stage_in_order(spark_run):
    assert [s.step for s in spark_run.steps] == [
        "validate_raw",
        "vehicle_location_metrics",
        "user_transaction_metrics",
        "crawl",
        "queries",
    ]
    for step in spark_run.steps[:3]:
        assert step.summary["status"] == "succeeded"


def it_agrees_with_the_reference_on_validation_counts(spark_run, reference):
    spark_counts = spark_run.steps[0].summary["datasets"]
    for name in DATASETS:
        expected = dict(reference.counts[name])
        actual = dict(spark_counts[name])
        actual["rejected_by_reason"] = {k: v for k, v in actual["rejected_by_reason"].items() if v}
        assert actual == expected, name


@pytest.mark.parametrize("table", TABLES)
def it_matches_the_reference_row_for_row(spark_run, reference, table):
    actual = read_table(spark_run.lake.processed(table))
    assert len(actual) > 0
    assert_same_table(table, actual, reference.tables[table], rtol=1e-9)


def it_records_row_counts_of_every_table(spark_run, reference):
    tables = {**spark_run.steps[1].summary["tables"], **spark_run.steps[2].summary["tables"]}
    assert {name: t["rows"] for name, t in tables.items()} == {
        name: len(reference.tables[name]) for name in TABLES
    }
