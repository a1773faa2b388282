"""Run ``rental-kpis`` as a user does: a subprocess, output captured, exit code kept."""

from __future__ import annotations

import subprocess
import sys


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """``python -m rental_kpis.cli ARGS``; ``kwargs`` (env, cwd, timeout) go to subprocess.run."""
    return subprocess.run(
        [sys.executable, "-m", "rental_kpis.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )
