"""`python -m rental_kpis` is the `rental-kpis` command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "rental-kpis"


def _both(*args: str) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    module = subprocess.run([sys.executable, "-m", "rental_kpis", *args], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    script = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=60)
    return module, script


def it_answers_as_the_script_does():
    module, script = _both("query", "--list")
    assert module.returncode == script.returncode == 0
    assert module.stdout == script.stdout and "highest_revenue_location" in module.stdout


def it_fails_as_the_script_does(tmp_path):
    module, script = _both("status", "--lake", str(tmp_path), "--last", "0")
    assert module.returncode == script.returncode == 2
    assert module.stderr == script.stderr
    assert module.stderr.startswith("rental-kpis: error: ")
