"""What a student meets on the command line: a partial run is never "succeeded", the
orchestration continues the run sprint 2 started, `status` shows whole run ids at any width,
and every option of every command has a help line (no developer docstrings)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

import pytest
from cli_runner import run_cli
from report_lake import build_lake

from rental_kpis import cli
from rental_kpis import walkthrough as backends
from rental_kpis.local.run_records import LOCAL_STAGES, run_history
from rental_kpis.local.runner import run_local
from rental_kpis.project import PROJECT_DIR
from rental_kpis.stages import SPARK_STAGES

RUN_ID = "20260101T120000Z-abc123"


@pytest.fixture(scope="module")
def lake_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("status")
    build_lake(root, RUN_ID)
    return root / "lake"


def spark_only(lake_dir: Path, run_id: str) -> None:
    """A run whose Spark steps succeeded and nothing else, as sprint 2 leaves it."""
    record = json.loads((lake_dir / "runs" / RUN_ID / "run.json").read_text())
    record.update(run_id=run_id, status="partial")
    record["stages"] = {s: record["stages"][s] for s in SPARK_STAGES}
    folder = lake_dir / "runs" / run_id
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps(record))
    for step in SPARK_STAGES:
        (folder / f"{step}.json").write_text(
            (lake_dir / "runs" / RUN_ID / f"{step}.json").read_text()
        )


def it_calls_a_run_of_some_stages_partial_never_succeeded(lake_dir):
    run_local(None, lake_dir, run_id="crawl-only", steps=("crawl",))
    record = next(r for r in run_history(backends.LocalBackend(lake_dir, "").lake, 100)
                  if r["run_id"] == "crawl-only")  # fmt: skip
    assert record["status"] == "partial"
    env = backends.LocalBackend(lake_dir, "")
    assert env.current_run_id() == RUN_ID  # the partial run wrote no tables
    shown = run_cli("status", "--lake", str(lake_dir), env={**os.environ, "COLUMNS": "200"})
    assert shown.returncode == 0
    assert "crawl-only  partial" in shown.stdout


def it_completes_the_run_sprint_2_started_without_running_its_spark_steps_again(lake_dir):
    spark_only(lake_dir, "sprint2-run")
    env = backends.LocalBackend(lake_dir, "")
    assert env.pending_stages("sprint2-run") == ("crawl", "queries")
    before = json.loads((lake_dir / "runs" / "sprint2-run" / "run.json").read_text())
    timeline = env.run_pipeline("sprint2-run")
    record = json.loads((lake_dir / "runs" / "sprint2-run" / "run.json").read_text())
    assert record["status"] == "succeeded"
    assert list(record["stages"]) == list(LOCAL_STAGES)
    for step in SPARK_STAGES:  # untouched: not run again
        assert record["stages"][step] == before["stages"][step]
    assert timeline["stage"].tolist() == list(LOCAL_STAGES)
    assert env.pending_stages("sprint2-run") == ()
    env.run_pipeline("sprint2-run")  # nothing left: nothing runs, the record stays
    assert json.loads((lake_dir / "runs" / "sprint2-run" / "run.json").read_text()) == record


@pytest.mark.parametrize("columns", ["30", "80", "200"])
def it_shows_whole_run_ids_at_any_terminal_width(lake_dir, columns):
    shown = run_cli("status", "--lake", str(lake_dir), env={**os.environ, "COLUMNS": columns})
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any(line.startswith(f"{RUN_ID}  succeeded") for line in lines), shown.stdout


def subcommands(parser: argparse.ArgumentParser, path: str = "rental-kpis"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from subcommands(child, f"{path} {name}")


def it_gives_every_option_of_every_command_a_help_line():
    missing = [
        f"{path} {'/'.join(action.option_strings) or action.dest}"
        for path, parser in subcommands(cli.build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert not missing, missing


def it_shows_no_developer_docstring_in_help():
    shown = run_cli("--help")
    assert shown.returncode == 0
    assert "No pipeline logic" not in shown.stdout and "call the library" not in shown.stdout
    assert "KPI pipeline" in shown.stdout


# ---------------------------------------------------------------- make test leaves the system alone


def make_dry_run(target: str) -> str:
    shown = subprocess.run(
        ["make", "-n", target], cwd=PROJECT_DIR, capture_output=True, text=True, check=False
    )
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def it_never_installs_system_packages_in_make_test_but_ci_does():
    assert "apt-get" not in make_dry_run("test")
    assert "apt-get install -y -qq --no-install-recommends" in make_dry_run("browser")
    ci = (PROJECT_DIR / ".ci" / "run").read_text().splitlines()
    commands = [line for line in ci if line.startswith("make ")]
    assert commands.index("make browser") < commands.index("make test")


def it_hard_codes_no_binary_path_in_the_tests():
    system_bin = "/" + "usr/bin/"  # spelt in two parts so this file does not match itself
    offenders = [
        path.name for path in (PROJECT_DIR / "tests").glob("*.py") if system_bin in path.read_text()
    ]
    assert not offenders, offenders
