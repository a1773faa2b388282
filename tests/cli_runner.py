"""Run ``rental-kpis`` as a user does: a subprocess, output captured, exit code kept; and
check the one-line error it ends with."""

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


def assert_one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 2 and one line ``rental-kpis: error: …`` on stderr, naming each fragment."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("rental-kpis: error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
