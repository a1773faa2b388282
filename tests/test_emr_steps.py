"""The three EMR steps, each spark-submitted on its own as EMR runs them, and the local run's
one application that runs the same step functions in one session."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tables import assert_matches_generator

from rental_kpis.devtools.datagen import generate
from rental_kpis.layout import Lake
from rental_kpis.local.raw_zone import load_raw
from rental_kpis.local.runner import _stage_groups
from rental_kpis.local.submit import spark_submit
from rental_kpis.project import EMR_STEPS_DIR, build_library_zip
from rental_kpis.spark.session import quick_start_conf
from rental_kpis.spark.steps import parse_stage_mark, stage_mark
from rental_kpis.stages import SPARK_STAGES


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("raw")
    generate(folder, 2_000, seed=5, defect_rate=0.002)
    return folder


def it_spark_submits_each_emr_step_script_on_its_own(raw, tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    load_raw(raw, lake)
    library = build_library_zip(tmp_path / "zip")
    for step in SPARK_STAGES:
        done = spark_submit(
            EMR_STEPS_DIR / f"{step}.py",
            ["--lake-root", lake.root, "--run-id", "emr"],
            [library],
            log_path=tmp_path / "logs" / f"{step}.log",
            conf=quick_start_conf(),  # the small input's JIT setting, as run_local picks it
        )
        assert done.returncode == 0, done.output[-3000:]
        # one status line per step script, and no progress lines: those are the local app's
        last = json.loads(done.output.strip().splitlines()[-1])
        assert (last["step"], last["status"]) == (step, "succeeded")
        assert not [ln for ln in done.output.splitlines() if parse_stage_mark(ln)]
        summary = json.loads(Path(lake.run_summary("emr", step)).read_text())
        assert summary["step"] == step
    assert_matches_generator(raw, lake, "emr")


def it_writes_and_reads_progress_lines():
    line = stage_mark("validate_raw", "done")
    assert parse_stage_mark(line) == ("validate_raw", "done")
    assert parse_stage_mark("rental_kpis.stage {not json") is None
    assert parse_stage_mark('{"step": "validate_raw"}') is None


def it_groups_consecutive_spark_stages_into_one_application():
    assert _stage_groups(["validate_raw", "vehicle_location_metrics", "crawl", "queries"]) == [
        ["validate_raw", "vehicle_location_metrics"],
        ["crawl"],
        ["queries"],
    ]
    assert _stage_groups(["crawl", "user_transaction_metrics"]) == [
        ["crawl"],
        ["user_transaction_metrics"],
    ]


def it_rejects_an_unknown_step_in_the_application_arguments():
    from rental_kpis.spark.steps import parse_app_args

    args = parse_app_args(["--lake-root", "x", "--steps", "validate_raw,user_transaction_metrics"])
    assert args.steps == ["validate_raw", "user_transaction_metrics"]
    with pytest.raises(SystemExit):
        parse_app_args(["--lake-root", "x", "--steps", "validate_raw,crawl"])


def it_names_the_failing_step_of_the_application_and_keeps_each_steps_log(raw, tmp_path):
    from rental_kpis.errors import StepFailed
    from rental_kpis.local.spark_app import run_spark_steps

    lake = Lake(str(tmp_path / "lake"))
    load_raw(raw, lake)
    shutil.rmtree(lake.raw("users"))  # validate_raw fails on it after the JVM started
    library = build_library_zip(tmp_path / "zip")
    events: list[tuple[str, str]] = []
    with pytest.raises(StepFailed) as failed:
        run_spark_steps(
            list(SPARK_STAGES),
            lake,
            "app",
            library,
            on_step=lambda step, event, _: events.append((step, event)),
        )
    assert (failed.value.step, failed.value.returncode) == ("validate_raw", 2)
    assert failed.value.detail == f"dataset 'users': no input files at {lake.raw('users')}"
    assert events == [("validate_raw", "start")]
    log = Path(lake.uri("runs", "app", "validate_raw.log")).read_text()
    assert "error: dataset 'users'" in log
    assert Path(lake.uri("runs", "app", "user_transaction_metrics.log")).read_text() == ""


def it_runs_the_steps_exactly_in_a_session_the_caller_already_has(raw, tmp_path, spark):
    """The sprint 2 notebook hands its session over: no second application, the same tables."""
    from rental_kpis.local.run_records import LOCAL_STAGES
    from rental_kpis.local.runner import run_local

    lake = Lake(str(tmp_path / "lake"))
    events: list[tuple[str, str]] = []
    run_local(
        raw,
        lake.root,
        run_id="inside",
        spark=spark,
        on_step=lambda step, event, _: events.append((step, event)),
    )
    assert events == [(s, e) for s in LOCAL_STAGES for e in ("start", "done")]
    record = json.loads(Path(lake.uri("runs", "inside", "run.json")).read_text())
    assert record["status"] == "succeeded"
    app = spark.sparkContext.applicationId
    for step in SPARK_STAGES:
        log = Path(lake.uri("runs", "inside", f"{step}.log")).read_text()
        assert log.startswith(f"ran in Spark application {app} (rental_kpis-tests)")
    assert_matches_generator(raw, lake, "inside")

    # a genuine failure (a corrupt file, not bad input): exit code 1, the JVM's root cause in
    # one line, the whole traceback in the step's log
    from rental_kpis.errors import StepFailed
    from rental_kpis.local.spark_app import run_session_steps

    users = next(Path(lake.curated("users")).glob("*.parquet"))
    users.write_bytes(b"this is not parquet")
    with pytest.raises(StepFailed) as failed:
        run_session_steps(spark, ["user_transaction_metrics"], lake, "broken")
    assert (failed.value.step, failed.value.returncode) == ("user_transaction_metrics", 1)
    assert f"file:{users}" in failed.value.detail and "\n" not in failed.value.detail
    log = Path(failed.value.log).read_text()
    assert "Traceback (most recent call last)" in log and "Caused by: " in log


def it_names_the_failing_step_in_the_callers_session_with_the_exit_code_of_bad_input(
    raw, tmp_path, spark
):
    from rental_kpis.errors import StepFailed
    from rental_kpis.local.spark_app import run_session_steps

    lake = Lake(str(tmp_path / "lake"))
    load_raw(raw, lake)
    shutil.rmtree(lake.raw("users"))
    events: list[tuple[str, str]] = []
    with pytest.raises(StepFailed) as failed:
        run_session_steps(
            spark,
            list(SPARK_STAGES),
            lake,
            "inside",
            on_step=lambda step, event, _: events.append((step, event)),
        )
    assert (failed.value.step, failed.value.returncode) == ("validate_raw", 2)
    assert failed.value.detail == f"dataset 'users': no input files at {lake.raw('users')}"
    assert events == [("validate_raw", "start")]
    log = Path(lake.uri("runs", "inside", "validate_raw.log")).read_text()
    assert log.splitlines()[-1] == f"error: {failed.value.detail}"


def it_lets_ctrl_c_through_in_the_callers_session_and_leaves_it_usable(raw, tmp_path, spark):
    """An interruption is not a failed step: it propagates (the run records it as interrupted),
    the session's jobs are cancelled, and nothing of the interrupted step is switched in."""
    from rental_kpis.local.spark_app import run_session_steps

    lake = Lake(str(tmp_path / "lake"))
    load_raw(raw, lake)

    def interrupt(step: str, event: str, _: object) -> None:
        if (step, event) == ("vehicle_location_metrics", "start"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_session_steps(spark, list(SPARK_STAGES), lake, "stopped", on_step=interrupt)
    assert Path(lake.curated("rental_transactions"), "_SUCCESS").exists()
    assert not Path(lake.processed("location_performance")).exists()
    assert spark.range(3).count() == 3
