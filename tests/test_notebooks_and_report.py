"""The walkthrough end to end: ``rental-kpis report`` runs the five notebooks with papermill on
the sample data in a temp folder, renders the HTML report, and a real browser opens it."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

import duckdb
import nbformat
import pytest
from cli_runner import run_cli

from rental_kpis.devtools import notebook_outputs
from rental_kpis.errors import NotebookFailed, UsageError
from rental_kpis.project import NOTEBOOK_DIR, PROJECT_DIR
from rental_kpis.report import kernel
from rental_kpis.report import notebooks as report
from rental_kpis.stages import SPARK_STAGES

RUN_ID = "nbtest-run"
SAMPLE = PROJECT_DIR / "data" / "raw"
ARTIFACTS = PROJECT_DIR / "test-artifacts"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """`rental-kpis report` on the sample, with every Spark application it starts (the
    notebook's own session and each spark-submit) writing an event log: Spark reads
    ``spark-defaults.conf`` from SPARK_CONF_DIR wherever it is launched from."""
    root = tmp_path_factory.mktemp("walkthrough")
    lake, out, events, conf = root / "lake", root / "reports", root / "events", root / "conf"
    events.mkdir()
    conf.mkdir()
    (conf / "spark-defaults.conf").write_text(
        f"spark.eventLog.enabled true\nspark.eventLog.dir file://{events}\n"
    )
    result = run_cli(
        "report", "--lake", str(lake), "--out", str(out), "--run-id", RUN_ID,
        timeout=1200, env={**os.environ, "SPARK_CONF_DIR": str(conf)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return {"lake": lake, "out": out, "stdout": result.stdout, "events": events}


def outputs(path: Path) -> list[dict]:
    notebook = nbformat.read(path, as_version=4)
    return [o for cell in notebook.cells for o in cell.get("outputs", [])]


def processed(lake: Path, table: str) -> duckdb.DuckDBPyRelation:
    return duckdb.sql(
        f"SELECT * FROM read_parquet('{lake}/processed/{table}/**/*.parquet', hive_partitioning=1)"
    )


# ---------------------------------------------------------------- the committed notebooks


@pytest.mark.parametrize("name", report.NOTEBOOKS)
def it_commits_each_notebook_without_outputs_and_with_a_parameters_cell(name):
    notebook = nbformat.read(report.NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert notebook_outputs.executed_cells(report.NOTEBOOK_DIR / f"{name}.ipynb") == []
    assert notebook.cells[0].cell_type == "markdown"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and 'backend = "local"' in tagged[0].source
    assert "**Goal:**" in notebook.cells[0].source
    assert "**Deliverable:**" in notebook.cells[0].source


@pytest.mark.parametrize("name", report.NOTEBOOKS)
def it_lets_papermill_read_every_name_of_the_parameters_cell(name):
    """papermill parses the parameters cell line by line; a line it cannot parse (e.g. "=" or
    parentheses in the comment) makes every injected value "an unknown parameter"."""
    import papermill

    path = report.NOTEBOOK_DIR / f"{name}.ipynb"
    cells = nbformat.read(path, as_version=4).cells
    cell = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
    assigned = {line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line}
    assert set(papermill.inspect_notebook(str(path))) == assigned


def it_titles_the_notebooks_after_the_course_plan():
    titles = {
        name: nbformat.read(report.NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
        .cells[0]
        .source.splitlines()[0]
        for name in report.NOTEBOOKS
    }
    assert titles == {
        "01_sprint1_setup_and_ingestion": "# Sprint 1 — Setup & ingestion",
        "02_sprint2_emr_processing": "# Sprint 2 — Pipeline development & execution: processing",
        "04_sprint3_catalog_and_athena":
            "# Sprint 3 — Integration, testing & demo: the catalog and Athena",
        "03_sprint2_orchestration": "# Sprint 2 — Pipeline development & execution: orchestration",
        "05_final_report": "# Rental marketplace KPI report",
    }  # fmt: skip


def it_gives_jupyter_this_virtualenv_as_the_kernel_every_notebook_names():
    """`make lab` and papermill start the notebooks' named kernel with this interpreter."""
    from jupyter_client.manager import KernelManager

    assert kernel.project_kernel() == "rental-kpis"
    command = KernelManager(kernel_name="rental-kpis").format_kernel_cmd()
    assert command[0] == sys.executable and "ipykernel_launcher" in command
    for path in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        spec = nbformat.read(path, as_version=4).metadata["kernelspec"]
        assert spec["name"] == "rental-kpis", path.name


def it_roots_make_lab_at_the_project_so_reports_open_and_starts_in_notebooks():
    import subprocess

    shown = subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", "lab"], cwd=PROJECT_DIR, capture_output=True,
        text=True, check=True,
    ).stdout  # fmt: skip
    assert "--ServerApp.root_dir=." in shown
    assert "--LabApp.default_url=/lab/tree/notebooks" in shown
    assert "--MappingKernelManager.default_kernel_name=rental-kpis" in shown


def it_registers_the_named_kernel_in_the_virtualenv_when_it_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(kernel, "KERNEL", "rental-kpis-missing-here")
    monkeypatch.setattr(kernel.sys, "prefix", str(tmp_path))
    assert kernel.project_kernel() == "rental-kpis-missing-here"
    spec = json.loads(
        (tmp_path / "share/jupyter/kernels/rental-kpis-missing-here/kernel.json").read_text()
    )
    assert spec["argv"][0] == sys.executable


def it_refuses_a_kernel_of_that_name_that_runs_another_python(tmp_path, monkeypatch):
    foreign = tmp_path / "kernels" / "rental-kpis"
    foreign.mkdir(parents=True)
    (foreign / "kernel.json").write_text(
        json.dumps(
            {
                "argv": ["/elsewhere/.venv/bin/python", "-m", "ipykernel_launcher"],
                "display_name": "old checkout",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    with pytest.raises(UsageError, match=r"runs /elsewhere/\.venv/bin/python, not this project"):
        kernel.project_kernel()


# ---------------------------------------------------------------- executed under papermill


@pytest.mark.slow
def it_runs_every_notebook_without_an_error_and_prints_the_report_path(built):
    for name in report.NOTEBOOKS:
        executed = built["out"] / f"{name}.ipynb"
        bad = [
            o for o in outputs(executed) if o.output_type == "error" or o.get("name") == "stderr"
        ]
        assert not bad, f"{name}: {bad[:1]}"
    html = built["out"] / report.HTML_NAME
    assert built["stdout"].strip().splitlines()[-1] == f"report: {html.resolve()}"


@pytest.mark.slow
def it_passes_the_parameters_into_every_notebook(built):
    lake = built["lake"]
    for name in report.NOTEBOOKS:
        notebook = nbformat.read(built["out"] / f"{name}.ipynb", as_version=4)
        [injected] = [
            c for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", [])
        ]
        assert f'lake = "{lake.resolve()}"' in injected.source
        assert (f'run_id = "{RUN_ID}"' in injected.source) == (name in report.RUN_ID_NOTEBOOKS)
    # 02 ran the Spark steps under the given run id, 04 completed that run, in the given lake.
    record = json.loads((lake / "runs" / RUN_ID / "run.json").read_text())
    assert record["status"] == "succeeded"
    assert list(record["stages"]) == [
        "validate_raw", "vehicle_location_metrics", "user_transaction_metrics", "crawl", "queries"
    ]  # fmt: skip
    first = outputs(built["out"] / "01_sprint1_setup_and_ingestion.ipynb")
    assert any(str(lake.resolve()) in json.dumps(o.get("data", {})) for o in first)


@pytest.mark.slow
def it_verifies_the_upload_with_the_row_counts_validation_finds(built):
    """Sprint 1's row counts (read back from the raw zone) equal validate_raw's input rows."""
    summary = json.loads((built["lake"] / "runs" / RUN_ID / "validate_raw.json").read_text())
    executed = built["out"] / "01_sprint1_setup_and_ingestion.ipynb"
    shown = "".join(json.dumps(o.get("data", {}), ensure_ascii=False) for o in outputs(executed))
    rows = sum(d["input_rows"] for d in summary["datasets"].values())
    assert f"{rows:,} rows: every dataset has the SPEC §1 columns" in shown


# ---------------------------------------------------------------- the HTML report


@pytest.fixture(scope="module")
def page(built) -> str:
    return (built["out"] / report.HTML_NAME).read_text(encoding="utf-8")


@pytest.mark.slow
def it_embeds_at_least_six_charts_as_data_uris_with_takeaways(page):
    images = re.findall(r"<img\b[^>]*>", page)
    assert len(images) >= 6
    for tag in images:
        src = re.search(r'src="([^"]*)"', tag).group(1)
        assert src.startswith("data:image/png;base64,"), tag[:80]
        assert base64.b64decode(src.split(",", 1)[1])[:4] == b"\x89PNG"
    captions = re.findall(r"<figcaption[^>]*>(.*?)</figcaption>", page)
    assert len(captions) == len(images) and all(len(c) > 30 for c in captions)


@pytest.mark.slow
def it_loads_nothing_from_the_network_and_shows_no_code(page):
    assert not re.search(r'<(script|img|link|iframe)\b[^>]*(src|href)="(https?:)?//', page)
    assert "env.table(" not in page and "open_backend" not in page
    assert "Traceback" not in page


@pytest.mark.slow
def it_shows_headline_numbers_equal_to_the_kpi_tables(page, built):
    lake = built["lake"]
    # One row each: a DuckDB 2 relation has no fetchone(), it keeps no result between calls.
    [(revenue, rentals)] = (
        processed(lake, "location_performance")
        .aggregate("sum(total_revenue), sum(transaction_count)")
        .fetchall()
    )
    [(users,)] = processed(lake, "user_metrics").count("*").fetchall()
    [(rented, fleet)] = (
        processed(lake, "vehicle_type_performance")
        .aggregate("sum(unique_vehicles_rented), sum(fleet_size)")
        .fetchall()
    )
    [(first, last)] = (
        processed(lake, "daily_metrics").aggregate("min(rental_date), max(rental_date)").fetchall()
    )
    expected = {
        "Revenue": f"${revenue:,.0f}",
        "Rentals": f"{rentals:,}",
        "Active users": f"{users:,}",
        "Vehicles rented": f"{rented:,} of {fleet:,} in the fleet",
        "Period": f"{first} to {last} ({(last - first).days + 1} days)",
    }
    for label, value in expected.items():
        assert re.search(rf">{label}</th>\s*<td>{re.escape(value)}</td>", page), (label, value)


@pytest.mark.slow
def it_renders_in_a_real_browser_with_every_image_loaded(built):
    if report.find_browser() is None:
        pytest.skip(f"no Chromium on PATH: {report.INSTALL_HINT}")
    with report.headless_browser() as driver:
        driver.get((built["out"] / report.HTML_NAME).resolve().as_uri())
        widths = driver.execute_script(
            "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)"
        )
        assert len(widths) >= 6 and all(w > 0 for w in widths), widths
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1200, min(int(height), 8000))
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "report.png"
        assert driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
    shutil.copy(built["out"] / report.HTML_NAME, ARTIFACTS / report.HTML_NAME)


# ---------------------------------------------------------------- sprint 2 teaches, Spark runs once


def shown(path: Path) -> str:
    """Everything a notebook's outputs show: rich data and printed text."""
    parts = []
    for output in outputs(path):
        parts.append(output.get("text", ""))
        parts.extend(str(v) for v in output.get("data", {}).values())
    return "\n".join(parts)


@pytest.mark.slow
def it_walks_through_validation_and_a_kpi_function_in_sprint_2(built):
    text = shown(built["out"] / "02_sprint2_emr_processing.ipynb")
    # a validation example: rows failing a rule, with the rule's reason beside them
    assert "the first two rejected rows of each reason" in text
    reasons = ("negative_amount", "unknown_user", "non_positive_duration", "missing_key")
    for reason in (*reasons, "conflicting_key"):
        assert reason in text, reason
    assert "def first_failing(" in text
    # each KPI function's own source, beside its result; one physical plan
    for function in ("location_performance", "vehicle_type_performance", "user_metrics"):
        assert f"def {function}(" in text, function
    assert "HashAggregate" in text and "Exchange hashpartitioning" in text
    assert "InMemoryTableScan" in text and "InMemoryRelation" not in text  # one line a scan
    # then the steps as EMR runs them: the spark-submit command of each step
    assert re.search(r"spark-submit .*--py-files \S+rental_kpis\.zip \S+/validate_raw\.py", text)


def spark_applications(events: Path) -> list[str]:
    """The name of every Spark application that started, from its event log."""
    names = []
    for log in sorted(events.iterdir()):
        for line in log.read_text().splitlines():
            event = json.loads(line)
            if event.get("Event") == "SparkListenerApplicationStart":
                names.append(event["App Name"])
    return names


@pytest.mark.slow
def it_starts_the_spark_application_once_per_demo(built):
    """Notebook 02 teaches in its session and then runs the steps in it; 03 completes that run
    instead of running them again (before: both ran the pipeline, 214 of 235 s of `make demo`;
    then: 02's session and a spark-submit, two JVM starts)."""
    started = Counter(spark_applications(built["events"]))
    assert started == {"rental_kpis.sprint2": 1}, started
    record = json.loads((built["lake"] / "runs" / RUN_ID / "run.json").read_text())
    assert [p.name for p in (built["lake"] / "runs").iterdir()] == [RUN_ID]
    assert record["status"] == "succeeded"
    assert set(record["stages"]) == {*SPARK_STAGES, "crawl", "queries"}
    for step in SPARK_STAGES:
        log = (built["lake"] / "runs" / RUN_ID / f"{step}.log").read_text()
        assert log.startswith("ran in Spark application ") and "(rental_kpis.sprint2)" in log


def it_names_the_notebook_the_error_and_the_executed_copy_when_a_cell_fails(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python"}
    parameters = nbformat.v4.new_code_cell('lake = "default"')
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [
        parameters,
        nbformat.v4.new_code_cell("raise LookupError(f'no run in {lake}')"),
    ]
    source, target = tmp_path / "06_broken.ipynb", tmp_path / "out" / "06_broken.ipynb"
    target.parent.mkdir()
    nbformat.write(notebook, source)
    with pytest.raises(NotebookFailed) as failed:
        report.execute(source, target, {"lake": "/data/x"})
    assert str(failed.value) == (
        f"notebook 06_broken failed: LookupError: no run in /data/x (executed copy: {target})"
    )
    assert target.exists()
