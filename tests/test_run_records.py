"""History is append-only: a run id names one run for good (its record, summaries and kept
query results are never rewritten), and a run's later stages and its report work on the tables
its own Spark steps wrote, or refuse."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from cli_runner import assert_one_line_error, run_cli
from test_cli_errors import copy_of

from rental_kpis import walkthrough
from rental_kpis.devtools.datagen import generate
from rental_kpis.errors import LakeUnusable, RunIdTaken, TablesReplaced
from rental_kpis.layout import Lake
from rental_kpis.local import athena as querying
from rental_kpis.local import run_records
from rental_kpis.local.run_records import LOCAL_STAGES, run_history
from rental_kpis.local.runner import run_local
from rental_kpis.stages import SPARK_STAGES

QUERY = "most_rented_vehicle_type"


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("raw")
    generate(folder, 400, seed=32, defect_rate=0.002)
    return folder


@pytest.fixture(scope="module")
def other_raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("other_raw")
    generate(folder, 300, seed=33)
    return folder


@pytest.fixture(scope="module")
def finished(raw, tmp_path_factory, spark) -> Lake:
    """A lake with one whole run ``first`` (in the tests' session)."""
    return run_local(raw, tmp_path_factory.mktemp("finished") / "lake", "first", spark=spark).lake


def files_of(lake: Lake, run_id: str) -> dict[str, bytes]:
    """Every file a run left: its record, summaries and logs, and its kept query results."""
    root = Path(lake.root)
    found = list(Path(lake.uri("runs", run_id)).iterdir())
    found += Path(lake.uri("query-results")).glob(f"*/{run_id}.csv")
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(found)}


# ---------------------------------------------------------------- a run id names one run


def it_refuses_a_second_run_of_the_same_id_and_keeps_the_first(finished, other_raw, tmp_path):
    lake = copy_of(finished, tmp_path / "lake")
    before = files_of(lake, "first")
    assert "runs/first/run.json" in before and f"query-results/{QUERY}/first.csv" in before
    done = run_cli("run", "--raw", str(other_raw), "--lake", lake.root, "--run-id", "first")
    assert_one_line_error(done, "run id first is taken", "run first succeeded", "another id")
    assert files_of(lake, "first") == before
    with pytest.raises(RunIdTaken, match="run first succeeded"):  # every stage, one by one
        run_local(None, lake.root, run_id="first", steps=("queries",))
    assert files_of(lake, "first") == before


def it_reads_the_result_a_past_run_kept_instead_of_overwriting_it(
    finished, other_raw, tmp_path, spark
):
    lake = copy_of(finished, tmp_path / "lake")
    kept = Path(lake.uri("query-results", QUERY, "first.csv"))
    before = kept.read_bytes()
    run_local(other_raw, lake.root, "second", spark=spark)  # other tables, another answer
    now = run_cli("query", QUERY, "--lake", lake.root)
    assert now.returncode == 0 and now.stdout.encode() != before
    past = run_cli("query", QUERY, "--lake", lake.root, "--run-id", "first")
    assert past.returncode == 0, past.stderr
    assert past.stdout.encode() == before  # what run first kept, not today's answer
    assert kept.read_bytes() == before


def it_keeps_a_query_result_under_a_new_id_once_and_refuses_the_id_for_a_run(
    finished, raw, tmp_path
):
    lake = copy_of(finished, tmp_path / "lake")
    first = run_cli("query", QUERY, "--lake", lake.root, "--run-id", "adhoc")
    kept = Path(lake.uri("query-results", QUERY, "adhoc.csv"))
    assert first.returncode == 0 and kept.read_text() == first.stdout
    again = run_cli("query", QUERY, "--lake", lake.root, "--run-id", "adhoc")
    assert again.stdout == first.stdout
    done = run_cli("run", "--raw", str(raw), "--lake", lake.root, "--run-id", "adhoc")
    assert_one_line_error(done, "run id adhoc is taken", f"query results are kept under it ({kept}")


def it_refuses_a_query_result_for_a_run_that_kept_none(finished, tmp_path):
    lake = copy_of(finished, tmp_path / "lake")
    run_local(None, lake.root, "crawled", steps=("crawl",))  # partial: no queries yet
    done = run_cli("query", QUERY, "--lake", lake.root, "--run-id", "crawled")
    assert_one_line_error(done, "run id crawled is taken", "runs/crawled exists")
    assert not Path(lake.uri("query-results", QUERY, "crawled.csv")).exists()


def it_continues_a_partial_run_only_with_stages_it_has_not_run(finished, raw, tmp_path):
    lake = copy_of(finished, tmp_path / "lake")
    run_local(None, lake.root, "crawled", steps=("crawl",))
    before = files_of(lake, "crawled")
    with pytest.raises(RunIdTaken, match="run crawled already ran crawl"):
        run_local(None, lake.root, "crawled", steps=("crawl", "queries"))
    with pytest.raises(RunIdTaken, match="run crawled is partial and goes on only on the raw"):
        run_local(raw, lake.root, "crawled", steps=("queries",))
    assert files_of(lake, "crawled") == before
    run_local(None, lake.root, "crawled", steps=("queries",))  # what it has not run yet
    assert Path(lake.uri("query-results", QUERY, "crawled.csv")).exists()


def it_refuses_a_report_under_a_taken_run_id_before_any_notebook(finished, tmp_path):
    lake = copy_of(finished, tmp_path / "lake")
    out = tmp_path / "out"
    done = run_cli("report", "--lake", lake.root, "--out", str(out), "--run-id", "first")
    assert_one_line_error(done, "run id first is taken")
    assert not out.exists()


# ---------------------------------------------------------------- one run's tables


def it_refuses_to_complete_a_run_on_another_runs_tables(raw, other_raw, tmp_path, spark):
    """Sprint 2 ran the Spark steps of run x; before the orchestration notebook completes
    it, ``rental-kpis run`` made run y on the same lake. Completing x now would crawl and
    query y's tables under x's name, and its report would show y's numbers beside x's data
    quality: refused, and x stays partial. A run with nothing between its stages completes,
    in a copy of its lake too (its tables are told by their files' names and sizes)."""
    run_local(raw, tmp_path / "lake", "alone", steps=SPARK_STAGES, spark=spark)
    shutil.copytree(tmp_path / "lake", tmp_path / "copy")
    lake_dir = tmp_path / "copy"
    env = walkthrough.LocalBackend(lake_dir, raw)
    env.run_pipeline("alone")
    assert env.run_record("alone")["status"] == "succeeded"
    assert list(env.run_record("alone")["stages"]) == list(LOCAL_STAGES)

    run_local(None, lake_dir, "x", steps=SPARK_STAGES, spark=spark)
    run_local(other_raw, lake_dir, "y", spark=spark)
    record = Path(env.lake.uri("runs", "x", "run.json")).read_bytes()
    replaced = r"run x: the tables its Spark steps wrote .* were replaced by run y"
    with pytest.raises(TablesReplaced, match=replaced):
        env.run_pipeline("x")
    assert Path(env.lake.uri("runs", "x", "run.json")).read_bytes() == record
    assert {r["run_id"]: r["status"] for r in run_history(env.lake)} == {
        "alone": "succeeded",
        "x": "partial",
        "y": "succeeded",
    }
    for run_id in ("x", "alone"):  # their data quality would sit beside y's tables
        with pytest.raises(TablesReplaced, match=rf"run {run_id}: .* its report would use"):
            env.step_summary(run_id, "validate_raw")
    assert env.step_summary("y", "validate_raw")["run_id"] == "y"
    assert querying.run_named_query(env.lake, QUERY).rows  # y's tables, whole
    assert env.pending_stages("x") == ("crawl", "queries")


def it_keeps_the_previous_run_record_whole_when_the_disk_is_full(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    record = {"run_id": "r1", "status": "running", "started_at": "2026-01-01T00:00:00+00:00"}
    run_records.write_run_record(lake, {**record, "stages": {}})
    path = Path(lake.uri("runs", "r1", "run.json"))
    before = path.read_bytes()
    temporary = path.with_name(f".run.json.{os.getpid()}.tmp")
    temporary.symlink_to("/dev/full")  # where the next write goes first
    with pytest.raises(LakeUnusable, match=f"run r1 \\(failed\\): cannot write its record {path}"):
        run_records.write_run_record(lake, {**record, "status": "failed", "stages": {}})
    assert path.read_bytes() == before  # not cut short: the record before the write
    assert not temporary.exists() and not temporary.is_symlink()
