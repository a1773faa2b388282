"""Run ids (``layout.check_run_id``): the strict pattern, and a run id that walks out of its
folder refused by every command, the step scripts, the library and the notebook backend
before anything is written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from cli_runner import assert_one_line_error, run_cli
from test_catalog_and_queries import write_world_tables

from rental_kpis.errors import InvalidRunId
from rental_kpis.layout import Lake, check_run_id, new_run_id
from rental_kpis.local import glue as catalog
from rental_kpis.local.runner import run_local
from rental_kpis.spark.steps import parse_args
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
