"""A Spark step's log, ``runs/<run_id>/<step>.log``, and the one line that says why it failed.

A write the OS refuses (a full disk) is LakeUnusable naming the log.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from rental_kpis.errors import LakeUnusable, os_error_text


def failure_detail(output: str) -> str:
    """The one line that says why a step failed.

    Our own ``error:`` line first (bad input); else the first JVM root cause that is not a
    wrapper ("Caused by: …ChecksumException: … file …"); else the last exception line (the
    exception itself, without an ``Exception in thread "main"`` prefix); never a stack frame.
    """
    lines = output.splitlines()
    for line in lines:
        if line.startswith("error: "):
            return line[len("error: ") :]
    causes = [
        ln[len("Caused by: ") :].strip()
        for ln in lines
        if ln.startswith("Caused by: ") and "Exception thrown in awaitResult" not in ln
    ]
    if causes:
        return causes[0]
    exceptions = [m.group(1) for ln in lines if (m := EXCEPTION_LINE.match(ln))]
    return exceptions[-1] if exceptions else (lines[-1] if lines else "no output")


# "org.apache.spark.SparkException: …", "Exception in thread "main" java.lang.…Exception: …"
EXCEPTION_LINE = re.compile(
    r'^\s*(?:Exception in thread "[^"]*"\s+)?([\w.$]+(?:Error|Exception)\b.*)$'
)


def log_refused(step: str, path: Path, error: OSError) -> LakeUnusable:
    """The one-line error of a step log the OS would not write (a full disk, …)."""
    return LakeUnusable(f"step {step}: cannot write its log {path}: {os_error_text(error)}")


def write_log(step: str, path: Path, text: str, mode: str = "w") -> None:
    """Write (or, with mode "a", append) ``text`` to the log of ``step``; LakeUnusable when
    the OS refuses."""
    try:
        with path.open(mode) as log:
            log.write(text)
    except OSError as error:
        raise log_refused(step, path, error) from error


class StepLogs:
    """The open log of every step of one application, ``<folder>/<step>.log``; a write or a
    close the OS refuses (a full disk shows at either) is LakeUnusable naming the log."""

    def __init__(self, folder: Path, steps: Sequence[str]) -> None:
        self.paths = {step: folder / f"{step}.log" for step in steps}
        self.handles: dict[str, IO[str]] = {}
        for step, path in self.paths.items():
            try:
                self.handles[step] = path.open("w")
            except OSError as error:
                self.close()
                raise log_refused(step, path, error) from error

    def write(self, step: str, text: str) -> None:
        try:
            self.handles[step].write(text)
        except OSError as error:
            raise log_refused(step, self.paths[step], error) from error

    def close(self) -> None:
        """Close every log; the first one that cannot be written out is raised after all are
        closed."""
        refused: LakeUnusable | None = None
        for step, handle in self.handles.items():
            try:
                handle.close()
            except OSError as error:
                refused = refused or log_refused(step, self.paths[step], error)
        if refused is not None:
            raise refused
