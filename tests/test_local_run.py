"""The whole local run: stages, summary, resilience to a failing stage, the lake lock, status."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_runner import run_cli

from rental_kpis.devtools.datagen import generate
from rental_kpis.errors import StepFailed
from rental_kpis.layout import Lake
from rental_kpis.local import athena as querying
from rental_kpis.local import glue as catalog
from rental_kpis.local.lock import LOCK_FILE
from rental_kpis.local.run_records import LOCAL_STAGES, run_history
from rental_kpis.local.runner import run_local
from rental_kpis.stages import STAGES

WIDE = {**os.environ, "COLUMNS": "200"}  # rich wraps at 80 columns without a terminal


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("raw")
    generate(folder, 3_000, seed=8, defect_rate=0.001)
    return folder


def it_names_local_stages_after_the_state_machine_spine():
    assert LOCAL_STAGES == (
        "validate_raw",
        "vehicle_location_metrics",
        "user_transaction_metrics",
        "crawl",
        "queries",
    )
    assert [s.state for s in STAGES][:3] == [
        "ValidateRaw",
        "VehicleLocationMetrics",
        "UserTransactionMetrics",
    ]


PRELOAD = """
import sys
from rental_kpis.local.runner import preload_local_stages
thread = preload_local_stages(sys.argv[1:])
if thread:
    thread.join()
local = ("rental_kpis.local.glue", "rental_kpis.local.athena")
print(thread is not None, *sorted(name for name in sys.modules if name in local))
"""


@pytest.mark.parametrize(
    ("steps", "printed"),
    [
        (["crawl", "queries"], "False"),  # no Spark application to hide the imports behind
        (["validate_raw"], "False"),
        (["validate_raw", "crawl"], "True rental_kpis.local.glue"),
        (
            ["user_transaction_metrics", "crawl", "queries"],
            "True " + " ".join(["rental_kpis.local.athena", "rental_kpis.local.glue"]),
        ),
    ],
)
def it_imports_the_local_stages_while_the_spark_application_runs(steps, printed):
    """In a fresh interpreter, so that only the thread can have imported them."""
    done = subprocess.run(
        [sys.executable, "-c", PRELOAD, *steps], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == printed


def it_keeps_the_previous_tables_queryable_when_a_kpi_step_fails(raw, tmp_path, spark):
    """The failing run is a spark-submit application; the runs around it use the tests'
    session (``run_local(spark=...)``), which writes the same tables without a JVM start."""
    lake_dir = tmp_path / "lake"
    first = run_local(raw, lake_dir, run_id="good", spark=spark)
    lake = first.lake
    before = querying.run_named_query(lake, "top_spending_users").rows
    assert [s.step for s in first.steps] == list(LOCAL_STAGES)

    # Corrupt a file only the second KPI step reads: it fails, the first one succeeds.
    users = next(Path(lake.curated("users")).glob("*.parquet"))
    users.write_bytes(b"this is not parquet")
    with pytest.raises(StepFailed) as failed:
        run_local(None, lake_dir, run_id="broken", steps=LOCAL_STAGES[1:])
    assert failed.value.step == "user_transaction_metrics"
    assert f"Checksum error: file:{users}" in str(failed.value)
    assert Path(failed.value.log).exists()

    # user_metrics is the previous run's, complete, and still answers with the same values.
    assert querying.run_named_query(lake, "top_spending_users").rows == before
    assert not list(Path(lake.uri("processed", "_staging")).glob("user_metrics.*/_SUCCESS"))
    history = run_history(lake)
    assert [(r["run_id"], r["status"]) for r in history] == [
        ("broken", "failed"),
        ("good", "succeeded"),
    ]
    assert "validate_raw" not in history[0]["stages"]
    assert history[0]["stages"]["vehicle_location_metrics"]["status"] == "succeeded"
    failed = history[0]["stages"]["user_transaction_metrics"]
    assert failed["status"] == "failed"
    assert failed["started_at"] <= failed["finished_at"]
    assert "user_transaction_metrics failed" in history[0]["error"]

    status = run_cli("status", "--lake", str(lake_dir), env=WIDE)
    assert status.returncode == 1
    assert "broken" in status.stdout and "failed" in status.stdout

    fixed = run_local(raw, lake_dir, run_id="fixed", spark=spark)
    assert [s.step for s in fixed.steps] == list(LOCAL_STAGES)
    assert querying.run_named_query(lake, "top_spending_users").rows == before
    assert [t.name for t in catalog.get_tables(lake)] == [
        "daily_metrics",
        "location_performance",
        "user_metrics",
        "vehicle_type_performance",
    ]


def it_refuses_a_second_run_on_the_same_lake_and_lets_the_first_finish(raw, tmp_path):
    lake_dir = tmp_path / "lake"
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rental_kpis.cli",
            "run",
            "--raw",
            str(raw),
            "--lake",
            str(lake_dir),
            "--run-id",
            "first",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=WIDE,
    )
    lock = lake_dir / LOCK_FILE
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text().startswith("run first")):
        assert time.monotonic() < deadline, "the first run never took the lock"
        assert first.poll() is None, first.communicate()
        time.sleep(0.1)
    second = run_cli("run", "--raw", str(raw), "--lake", str(lake_dir), "--run-id", "second")
    assert second.returncode == 2
    assert f"lake {lake_dir} is in use by run first (pid {first.pid}" in second.stderr
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    # the closing summary: rows in, rejects by reason, tables, one line per query answer
    for text in (
        "rental_transactions",
        "unknown_vehicle",
        "location_performance",
        "highest_revenue_location: location_id=",
        "run first succeeded in",
    ):
        assert text in out
    assert [r["run_id"] for r in run_history(Lake(str(lake_dir)))] == ["first"]
