"""``rental-kpis report``: run the sprint notebooks in order with papermill, then render the final
report notebook to one self-contained HTML file.

The executed copies go to the output folder (``reports/`` by default, git-ignored) so a reader
can open every step; the HTML has no code cells, its charts are data URIs and it loads nothing
from the network (``template/`` drops the lab template's CDN scripts).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rental_kpis.errors import NotebookFailed, UsageError, os_error_text
from rental_kpis.layout import new_run_id
from rental_kpis.project import NOTEBOOK_DIR
from rental_kpis.report.kernel import project_kernel
from rental_kpis.walkthrough.order import NOTEBOOKS, ORCHESTRATION, PROCESSING, REPORT

TEMPLATE_DIR = Path(__file__).resolve().parent / "template"
FINAL = REPORT
# The notebooks that take the run id: 02 runs the Spark steps under it, 03 completes that very
# run (crawl, queries) instead of running Spark again, 05 reports on it.
RUN_ID_NOTEBOOKS = (PROCESSING, ORCHESTRATION, REPORT)
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
                kernel_name=project_kernel(),
                progress_bar=False,
                log_output=False,
                kernel_manager_class=_ipc_kernel_manager(sockets),
            )
    except papermill.PapermillExecutionError as error:
        raise NotebookFailed(source.stem, f"{error.ename}: {error.evalue}", str(target)) from None


# What the report's HTML may contain: our tables, figures and markdown. Anything else in an
# output (a script, an event handler, an iframe, a style) is dropped by ``sanitised``.
ALLOWED_TAGS = frozenset(
    {
        "a", "b", "blockquote", "br", "code", "div", "em", "figcaption", "figure", "h1", "h2",
        "h3", "h4", "hr", "i", "img", "li", "ol", "p", "pre", "span", "strong", "table",
        "tbody", "td", "th", "thead", "tr", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "*": ["class", "title"],
    "a": ["href"],
    "img": ["src", "alt"],
    "th": ["scope"],
}
# Links may be web addresses; images only PNGs embedded in the file.
ALLOWED_PROTOCOLS = frozenset({"http", "https", "data"})
PNG_DATA = "data:image/png;base64,"
SAFE_OUTPUTS = frozenset({"text/plain", "image/png"})
SANITISED_OUTPUTS = frozenset({"text/html", "text/markdown"})


def sanitised(markup: str) -> str:
    """``markup`` with only the tags and attributes the report uses; the text of anything
    else is escaped, so a value that slipped past the tables' escaping shows, never runs."""
    import bleach

    def attribute_allowed(tag: str, name: str, value: str) -> bool:
        if tag == "img" and name == "src":
            return value.startswith(PNG_DATA)
        if tag == "a" and name == "href":
            return value.startswith(("http://", "https://", "#"))
        return name in ALLOWED_ATTRIBUTES.get(tag, []) or name in ALLOWED_ATTRIBUTES["*"]

    return bleach.clean(
        markup,
        tags=ALLOWED_TAGS,
        attributes=attribute_allowed,
        protocols=ALLOWED_PROTOCOLS,
        strip=False,
        strip_comments=True,
    )


def sanitise_notebook(notebook: object) -> None:
    """Sanitise every output and markdown cell of an executed notebook in place: HTML and
    markdown through ``sanitised``; any other kind of output (JavaScript, widgets, SVG)
    dropped; text and PNG kept as they are."""
    for cell in notebook.cells:  # type: ignore[attr-defined]
        if cell.cell_type in ("markdown", "raw"):
            cell.source = sanitised(cell.source)
            continue
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data is None:
                continue
            for kind in list(data):
                if kind in SANITISED_OUTPUTS:
                    data[kind] = sanitised(data[kind])
                elif kind not in SAFE_OUTPUTS:
                    del data[kind]


def render_html(executed: Path, target: Path) -> Path:
    """The executed notebook as HTML: outputs and markdown only, sanitised, images inline, no
    scripts fetched from anywhere."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(executed, as_version=4)
    sanitise_notebook(notebook)
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


def report_files(out: Path) -> list[Path]:
    """The files a report writes into ``out``: the executed notebooks and the HTML."""
    return [out / f"{name}.ipynb" for name in NOTEBOOKS] + [out / HTML_NAME]


def prepare_out(out: Path) -> None:
    """Make ``out`` the folder of a new report, or raise UsageError before anything runs.

    A file, or the folder of the source notebooks (their executed copies would replace them),
    is refused. The folder is made if missing, and the files of a previous report
    (``report_files``) are deleted, so that a report that fails part-way leaves the notebooks
    it executed and nothing older beside them; other files in ``out`` are left alone.
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file: the report needs a folder")
    if out.resolve() == NOTEBOOK_DIR.resolve() or any(
        path.exists() and path.samefile(NOTEBOOK_DIR / path.name)
        for path in report_files(out)
        if (NOTEBOOK_DIR / path.name).exists()
    ):
        raise UsageError(
            f"--out {out} is the folder of the source notebooks: their executed copies would "
            "replace them; choose another folder (default: reports)"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        for path in report_files(out):
            path.unlink(missing_ok=True)
    except OSError as error:
        raise UsageError(f"--out {out} cannot be written: {os_error_text(error)}") from error


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
    """Execute ``notebooks`` in order into ``out`` and render the final one to HTML.

    ``out`` is checked and emptied of a previous report's files first (``prepare_out``).
    """
    prepare_out(out)
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


# ---------------------------------------------------------------- the report in a browser

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "`make browser` installs Chromium and ChromeDriver"


def find_browser() -> tuple[str, str] | None:
    """(browser, driver) found on PATH, or None: nothing here assumes where a system keeps
    them."""
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@contextmanager
def headless_browser(width: int = 1200, height: int = 900) -> Iterator[object]:
    """A headless Chromium through Selenium, closed on exit; LookupError when none is found."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_browser()
    if found is None:
        raise LookupError(f"no Chromium with ChromeDriver on PATH: {INSTALL_HINT}")
    browser, driver_path = found
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--hide-scrollbars", f"--window-size={width},{height}",
    ):  # fmt: skip
        options.add_argument(flag)
    # A dialog a page opens stays open for the caller to see (the XSS test looks for one).
    options.set_capability("unhandledPromptBehavior", "ignore")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(html: Path, png: Path, width: int = 1000, height: int = 760) -> Path:
    """The report's first screen as a PNG (the README's picture): what a reader sees on
    opening the file, at a laptop-sized window."""
    with headless_browser(width, height) as driver:
        driver.get(html.resolve().as_uri())  # type: ignore[attr-defined]
        png.parent.mkdir(parents=True, exist_ok=True)
        if not driver.save_screenshot(str(png)):  # type: ignore[attr-defined]
            raise RuntimeError(f"the browser wrote no screenshot of {html}")
    return png


def main(argv: list[str] | None = None) -> int:
    """``python -m rental_kpis.report.notebooks HTML PNG``: screenshot a rendered report
    (``make screenshot``)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m rental_kpis.report.notebooks",
        description="Screenshot the report's first screen.",
    )
    parser.add_argument("html", type=Path, help="the rendered report (reports/…html)")
    parser.add_argument("png", type=Path, help="where to write the PNG")
    args = parser.parse_args(argv)
    try:
        print(screenshot(args.html, args.png))
    except LookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
