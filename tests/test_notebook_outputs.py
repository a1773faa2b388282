"""The pre-commit check that notebooks are stored without outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rental_kpis.project import NOTEBOOK_DIR


def _notebook(path: Path, outputs: list[dict], count: int | None) -> Path:
    cell = {"cell_type": "code", "source": "1", "metadata": {}, "outputs": outputs}
    cell["execution_count"] = count
    markdown = {"cell_type": "markdown", "source": "# t", "metadata": {}}
    path.write_text(json.dumps({"cells": [markdown, cell], "nbformat": 4, "nbformat_minor": 5}))
    return path


def _check(*paths: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "rental_kpis.devtools.notebook_outputs", *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def it_names_each_notebook_that_holds_an_output_or_a_count(tmp_path):
    clean = _notebook(tmp_path / "clean.ipynb", [], None)
    shown = _notebook(tmp_path / "shown.ipynb", [{"output_type": "stream", "text": "1"}], 1)
    counted = _notebook(tmp_path / "counted.ipynb", [], 3)
    done = _check(clean, shown, counted)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{shown}: outputs in cells [1]: clear them before committing",
        f"{counted}: outputs in cells [1]: clear them before committing",
    ]


def it_passes_the_committed_notebooks():
    done = _check(*sorted(NOTEBOOK_DIR.glob("*.ipynb")))
    assert (done.returncode, done.stdout) == (0, "")
