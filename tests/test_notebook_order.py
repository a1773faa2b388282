"""The notebooks as a student meets them in JupyterLab: each opened on its own, with its default
parameters (no run id passed), in course order; opened too early, each says in one line which
notebook to run first and writes nothing; a cell run again never rewrites a finished run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from rental_kpis.errors import NotebookFailed
from rental_kpis.project import LAKE_VARIABLE, NOTEBOOK_DIR
from rental_kpis.report import notebooks as report
from rental_kpis.stages import SPARK_STAGES
from rental_kpis.walkthrough.order import CATALOG, ORCHESTRATION, PROCESSING, REPORT, SETUP

pytestmark = pytest.mark.slow


def run_notebook(
    name: str, out: Path, parameters: dict | None = None, cells: list | None = None
) -> tuple[nbformat.NotebookNode, dict | None]:
    """Execute notebook ``name`` on its own (a fresh kernel, as JupyterLab opens it); returns
    the executed copy and its error output, if a cell raised. ``cells`` replaces its cells."""
    source = NOTEBOOK_DIR / f"{name}.ipynb"
    if cells is not None:
        notebook = nbformat.read(source, as_version=4)
        notebook.cells = cells
        source = NOTEBOOK_DIR / f".{name}-edited.ipynb"  # beside the others: the same cwd
        nbformat.write(notebook, source)
    target = out / f"{name}-{len(list(out.iterdir()))}.ipynb"
    try:
        report.execute(source, target, parameters or {})
    except NotebookFailed:
        pass
    finally:
        if cells is not None:
            source.unlink()
    executed = nbformat.read(target, as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"]
    return executed, errors[0] if errors else None


def text_of(executed: nbformat.NotebookNode) -> str:
    shown = []
    for cell in executed.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            shown.append(output.get("text", "") + data.get("text/markdown", "")
                         + data.get("text/plain", ""))  # fmt: skip
    return "\n".join(shown)


def runs(lake: Path) -> dict[str, dict]:
    folder = lake / "runs"
    if not folder.is_dir():
        return {}
    return {p.parent.name: json.loads(p.read_text()) for p in folder.glob("*/run.json")}


def assert_says_run_first(error: dict | None, needed: str) -> None:
    assert error is not None and error["ename"] == "NotebookOrder", error
    assert error["traceback"] == [f"NotebookOrder: {error['evalue']}"]  # one line, no trace
    assert f"run notebook {needed} first" in error["evalue"]


@pytest.fixture
def student(tmp_path, monkeypatch) -> dict[str, Path]:
    """The one setting that points every notebook at a lake (here a fresh one), and a Spark
    configuration that logs every application started, to count them."""
    lake, out, events, conf = (tmp_path / n for n in ("lake", "out", "events", "conf"))
    for folder in (out, events, conf):
        folder.mkdir()
    (conf / "spark-defaults.conf").write_text(
        f"spark.eventLog.enabled true\nspark.eventLog.dir file://{events}\n"
    )
    monkeypatch.setenv(LAKE_VARIABLE, str(lake))
    monkeypatch.setenv("SPARK_CONF_DIR", str(conf))
    return {"lake": lake, "out": out, "events": events}


def it_runs_each_notebook_on_its_own_in_course_order_and_says_what_comes_first(student):
    lake, out = student["lake"], student["out"]
    for name in (PROCESSING, ORCHESTRATION, CATALOG, REPORT):  # an empty lake: nothing to read
        _, error = run_notebook(name, out)
        assert_says_run_first(error, SETUP if name in (PROCESSING, ORCHESTRATION) else PROCESSING)
        assert runs(lake) == {}, name

    _, error = run_notebook(SETUP, out)
    assert error is None, error
    _, error = run_notebook(CATALOG, out)  # the raw zone alone: no tables to catalog yet
    assert_says_run_first(error, PROCESSING)
    _, error = run_notebook(ORCHESTRATION, out)  # no run of notebook 02 to complete
    assert_says_run_first(error, PROCESSING)
    assert runs(lake) == {}

    _, error = run_notebook(PROCESSING, out)
    assert error is None, error
    (run_id, record), = runs(lake).items()  # fmt: skip
    assert record["status"] == "partial" and set(record["stages"]) == set(SPARK_STAGES)
    _, error = run_notebook(REPORT, out)  # 02's run is not complete: crawl and queries are due
    assert_says_run_first(error, ORCHESTRATION)
    assert f"run {run_id} has not run crawl, queries" in error["evalue"]

    executed, error = run_notebook(ORCHESTRATION, out)
    assert error is None, error
    assert f"Stages of run `{run_id}` still to run: crawl, queries" in text_of(executed)
    (same, completed), = runs(lake).items()  # fmt: skip
    assert same == run_id and completed["status"] == "succeeded"
    assert {s: completed["stages"][s] for s in SPARK_STAGES} == record["stages"]  # not re-run
    assert len(list(student["events"].iterdir())) == 1  # one Spark application: 02's session

    for name in (CATALOG, REPORT):
        executed, error = run_notebook(name, out)
        assert error is None, (name, error)
    assert f"| run id | {run_id} |" in text_of(executed) or run_id in text_of(executed)
    assert runs(lake)[run_id]["status"] == "succeeded"
    assert list(runs(lake)) == [run_id]


def it_reports_the_run_whose_tables_the_lake_holds_not_an_older_one(student):
    """A lake with an older succeeded run: 05 after 02 and 03 reports the new run."""
    lake, out = student["lake"], student["out"]
    for name in (SETUP, PROCESSING, ORCHESTRATION):
        run_notebook(name, out)
    (older,) = runs(lake)
    shutil.rmtree(student["events"])
    student["events"].mkdir()
    for name in (PROCESSING, ORCHESTRATION):
        _, error = run_notebook(name, out)
        assert error is None, (name, error)
    (newer,) = set(runs(lake)) - {older}
    executed, error = run_notebook(REPORT, out)
    assert error is None, error
    shown = text_of(executed)
    assert newer in shown and older not in shown


def it_never_rewrites_a_finished_run_when_the_steps_cell_runs_again_after_stop(student):
    lake, out = student["lake"], student["out"]
    run_notebook(SETUP, out)
    cells = nbformat.read(NOTEBOOK_DIR / f"{PROCESSING}.ipynb", as_version=4).cells
    steps = next(i for i, c in enumerate(cells) if "env.run_steps(" in c.source)
    stop = next(i for i, c in enumerate(cells) if c.source.startswith("spark.stop()"))
    assert stop > steps
    rerun = nbformat.v4.new_code_cell(cells[steps].source)
    again = [*cells[: stop + 1], rerun, *cells[stop + 1 :]]
    _, error = run_notebook(PROCESSING, out, cells=again)
    assert error is None, error
    (record,) = runs(lake).values()
    assert record["status"] == "partial"  # its Spark steps succeeded; crawl, queries are 03's
    assert all(record["stages"][s]["status"] == "succeeded" for s in SPARK_STAGES)
    assert len(list(student["events"].iterdir())) == 1  # nothing ran a second time


def it_refuses_a_bad_run_id_in_the_cell_after_the_parameters(student):
    run_notebook(SETUP, student["out"])
    executed, error = run_notebook(PROCESSING, student["out"], {"run_id": "../elsewhere"})
    assert error is not None and error["ename"] == "InvalidRunId"
    assert len(error["traceback"]) == 1
    failed = next(i for i, c in enumerate(executed.cells) if any(
        o.output_type == "error" for o in c.get("outputs", [])))  # fmt: skip
    assert "walkthrough.start(" in executed.cells[failed].source  # before any Spark
    assert list(student["events"].iterdir()) == []


def it_says_in_one_line_that_aws_has_no_credentials(student, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    parameters = {"backend": "aws", "bucket": "rental-kpis-demo", "region": "eu-west-1"}
    _, error = run_notebook(SETUP, student["out"], parameters)
    assert error is not None and error["ename"] == "AwsUnavailable", error
    assert len(error["traceback"]) == 1
    assert "`aws configure`" in error["evalue"] and "docs/aws.md" in error["evalue"]
