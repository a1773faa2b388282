"""``rental-kpis report``: run the sprint notebooks in order with papermill, then render the final
report notebook to one self-contained HTML file.

The executed copies go to the output folder (``reports/`` by default, git-ignored) so a reader
can open every step; the HTML has no code cells, its charts are data URIs and it loads nothing
from the network (``template/`` drops the lab template's CDN scripts).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rental_kpis.errors import NotebookFailed
from rental_kpis.layout import new_run_id
from rental_kpis.project import NOTEBOOK_DIR

TEMPLATE_DIR = Path(__file__).resolve().parent / "template"
NOTEBOOKS: tuple[str, ...] = (
    "01_sprint1_setup_and_ingestion",
    "02_sprint2_emr_processing",
    "03_sprint3_catalog_and_athena",
    "04_orchestration",
    "05_final_report",
)
FINAL = NOTEBOOKS[-1]
# The notebooks that take the run id: 04 runs the pipeline under it, 05 reports on that run.
RUN_ID_NOTEBOOKS = ("04_orchestration", "05_final_report")
HTML_NAME = "rental_kpis_report.html"


@dataclass
class ReportResult:
    html: Path
    run_id: str
    executed: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def parameters_for(notebook: str, common: dict[str, str], run_id: str) -> dict[str, str]:
    return {**common, "run_id": run_id} if notebook in RUN_ID_NOTEBOOKS else dict(common)


def _ipc_kernel_manager(socket_dir: str) -> type:
    """A kernel manager whose kernel talks over Unix sockets in ``socket_dir``: nothing listens
    on a TCP port, and ipykernel has no reason to warn about unencrypted TCP."""
    from jupyter_client.manager import AsyncKernelManager

    class IpcKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: object) -> None:
            super().__init__(transport="ipc", ip=str(Path(socket_dir) / "kernel"), **kwargs)

    return IpcKernelManager


def execute(source: Path, target: Path, parameters: dict[str, str]) -> None:
    """papermill one notebook; a failing cell becomes NotebookFailed naming the notebook."""
    import papermill

    try:
        with tempfile.TemporaryDirectory(prefix="rental_kpis_kernel_") as sockets:
            papermill.execute_notebook(
                str(source),
                str(target),
                parameters=parameters,
                cwd=str(source.parent),
                kernel_name="python3",
                progress_bar=False,
                log_output=False,
                kernel_manager_class=_ipc_kernel_manager(sockets),
            )
    except papermill.PapermillExecutionError as error:
        raise NotebookFailed(source.stem, f"{error.ename}: {error.evalue}", str(target)) from None


def render_html(executed: Path, target: Path) -> Path:
    """The executed notebook as HTML: outputs and markdown only, images inline, no scripts
    fetched from anywhere."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(executed, as_version=4)
    exporter = HTMLExporter(
        template_name=TEMPLATE_DIR.name,
        extra_template_basedirs=[str(TEMPLATE_DIR.parent)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    body, _ = exporter.from_notebook_node(
        notebook, resources={"metadata": {"name": "Rental marketplace KPI report"}}
    )
    target.write_text(body, encoding="utf-8")
    return target


def build(
    lake: Path,
    out: Path,
    raw: Path,
    *,
    run_id: str | None = None,
    backend: str = "local",
    bucket: str = "",
    region: str = "",
    notebooks: tuple[str, ...] = NOTEBOOKS,
    on_notebook: Callable[[str, float], None] | None = None,
) -> ReportResult:
    """Execute ``notebooks`` in order into ``out`` and render the final one to HTML."""
    out.mkdir(parents=True, exist_ok=True)
    run_id = run_id or new_run_id()
    common = {
        "backend": backend,
        "lake": str(lake.resolve()),
        "raw": str(raw.resolve()),
        "bucket": bucket,
        "region": region,
    }
    result = ReportResult(html=out / HTML_NAME, run_id=run_id)
    for name in notebooks:
        started = time.monotonic()
        target = out / f"{name}.ipynb"
        execute(NOTEBOOK_DIR / f"{name}.ipynb", target, parameters_for(name, common, run_id))
        result.executed.append(target)
        result.seconds[name] = time.monotonic() - started
        if on_notebook:
            on_notebook(name, result.seconds[name])
    if FINAL in notebooks:
        render_html(out / f"{FINAL}.ipynb", result.html)
    return result
