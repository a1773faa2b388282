"""The order a student opens the notebooks in, and what each one needs from the ones before.

Each notebook's first cell calls ``start``: it checks the parameters and the lake before any
work, and a notebook opened too early stops there with one line naming the notebook to run
first (``NotebookOrder``), having written nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rental_kpis.errors import NotebookOrder, UnknownName
from rental_kpis.layout import check_run_id
from rental_kpis.project import PROJECT_DIR, default_lake

if TYPE_CHECKING:
    from rental_kpis.walkthrough.aws_backend import AwsBackend
    from rental_kpis.walkthrough.local_backend import LocalBackend

SETUP = "01_sprint1_setup_and_ingestion"
PROCESSING = "02_sprint2_emr_processing"
ORCHESTRATION = "03_sprint2_orchestration"
CATALOG = "04_sprint3_catalog_and_athena"
REPORT = "05_final_report"
# Course order: Sprint 1, Sprint 2 (processing, then orchestration), Sprint 3.
NOTEBOOKS: tuple[str, ...] = (SETUP, PROCESSING, ORCHESTRATION, CATALOG, REPORT)
# The command that does what each notebook does, per backend.
COMMANDS = {
    ("local", SETUP): "rental-kpis run",
    ("local", PROCESSING): "rental-kpis run",
    ("local", ORCHESTRATION): "rental-kpis run",
    ("aws", SETUP): "rental-kpis aws setup",
    ("aws", PROCESSING): "rental-kpis aws run",
    ("aws", ORCHESTRATION): "rental-kpis aws run",
}


def start(
    notebook: str,
    backend: str,
    lake: str | Path = "",
    raw: str | Path = "../data/raw",
    bucket: str = "",
    region: str = "",
    run_id: str = "",
) -> LocalBackend | AwsBackend:
    """The backend a notebook works on, once its parameters and prerequisites hold.

    ``lake`` empty is ``project.default_lake`` (``$RENTAL_KPIS_LAKE``, else the project's
    ``lake/``). ``run_id`` empty means the notebook's default: a new run (02), else the run
    whose tables the lake holds.

    Raises:
        UsageError: a parameter that cannot work (an unknown backend, a malformed run id, aws
            without a bucket or credentials).
        NotebookOrder: what the notebook reads is not there yet; names the notebook to run.
    """
    from rental_kpis.walkthrough import open_backend

    if notebook not in NOTEBOOKS:
        raise UnknownName(f"no notebook {notebook!r}; the notebooks are {', '.join(NOTEBOOKS)}")
    if run_id:
        check_run_id(run_id)
    env = open_backend(
        backend, lake=lake or default_lake(PROJECT_DIR), raw=raw, bucket=bucket, region=region
    )
    _check_prerequisites(env, notebook, run_id)
    return env


def _check_prerequisites(env: LocalBackend | AwsBackend, notebook: str, run_id: str) -> None:
    if notebook == SETUP:
        return
    if notebook in (PROCESSING, ORCHESTRATION) and not env.has_raw():
        raise _first(env, notebook, SETUP, "the raw zone holds no data")
    if notebook == CATALOG and not env.has_tables():
        raise _first(env, notebook, PROCESSING, "the processed zone holds no KPI tables")
    if notebook in (ORCHESTRATION, REPORT):
        run = run_id or env.current_run_id(default=None)
        if run is None:
            raise _first(env, notebook, PROCESSING, "no run has written the KPI tables")
        if notebook == REPORT:
            pending = env.pending_stages(run)
            if pending:
                raise _first(
                    env, notebook, ORCHESTRATION, f"run {run} has not run {', '.join(pending)}"
                )


def _first(env: LocalBackend | AwsBackend, notebook: str, needed: str, why: str) -> NotebookOrder:
    command = COMMANDS.get((env.name, needed))
    instead = f" (or `{command}`)" if command else ""
    return NotebookOrder(
        f"notebook {notebook} on {env.where()}: {why}; run notebook {needed} first{instead}"
    )
