"""Run ``rental-kpis`` as on a system without Linux's own facilities (macOS), on Linux.

``python tests/without_linux_only.py ARGS`` runs ``rental_kpis.cli.main(ARGS)`` after:

- libc loses ``prctl`` and ``renameat2`` (``ctypes.CDLL`` finds no such symbol, as on macOS);
- ``/proc`` is gone for every reader but psutil (an audit hook answers FileNotFoundError to
  each open, listdir and scandir under it): psutil is the layer that reads each system's own
  process table, /proc on Linux and sysctl on macOS;
- the Spark driver that ``spark-submit`` starts runs under the same two rules (its Python is
  this file in ``--driver`` mode), and logs each table switch that fell back to two renames.

Every refused /proc access is appended to ``$PROC_LOG`` (``/proc`` and the caller), so a test
can prove nobody tried; ``$SWITCH_LOG`` gets one line per fallen-back exchange.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import sys
import traceback
from pathlib import Path

LINUX_ONLY = frozenset({"prctl", "renameat2"})
PROC_LOG, SWITCH_LOG = "PROC_LOG", "SWITCH_LOG"
_CDLL = ctypes.CDLL


class LibcWithoutLinuxOnly(_CDLL):
    """A shared library without ``LINUX_ONLY`` symbols."""

    def __getattr__(self, name: str):
        if name in LINUX_ONLY:
            raise AttributeError(name)
        return super().__getattr__(name)

    def __getitem__(self, name):
        if name in LINUX_ONLY:
            raise AttributeError(name)
        return super().__getitem__(name)


def _in_psutil() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_globals.get("__name__", "").partition(".")[0] == "psutil":
            return True
        frame = frame.f_back
    return False


def _refuse_proc(event: str, args: tuple) -> None:
    if event not in ("open", "os.listdir", "os.scandir") or not args:
        return
    path = args[0]
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str) or not (path == "/proc" or path.startswith("/proc/")):
        return
    if _in_psutil():
        return
    with open(os.environ[PROC_LOG], "a") as log:  # not under /proc: no recursion
        caller = "".join(traceback.format_stack(sys._getframe(1), limit=6))
        log.write(f"{event} {path}\n{caller}\n")
    raise FileNotFoundError(2, "No such file or directory (no /proc here)", path)


def install() -> None:
    """Take the Linux-only facilities away from this process."""
    ctypes.CDLL = LibcWithoutLinuxOnly  # type: ignore[misc]
    sys.addaudithook(_refuse_proc)


def _driver_python(folder: Path) -> str:
    """An executable in ``folder`` that runs a Spark driver script under ``install``."""
    script = folder / "driver-python"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{__file__}" --driver "$@"\n')
    script.chmod(0o755)
    return str(script)


def _run_cli(argv: list[str]) -> int:
    install()
    from rental_kpis import cli
    from rental_kpis.local import submit

    driver = _driver_python(Path(os.environ[PROC_LOG]).parent)
    environment = submit.local_environment

    def local_environment(*args, **kwargs) -> dict[str, str]:
        return {**environment(*args, **kwargs), "PYSPARK_DRIVER_PYTHON": driver}

    submit.local_environment = local_environment
    return cli.main(argv)


def _run_driver(argv: list[str]) -> None:
    install()
    from rental_kpis.spark import switch

    exchange = switch.exchange

    def logged_exchange(a: str, b: str) -> bool:
        done = exchange(a, b)
        if not done:
            with open(os.environ[SWITCH_LOG], "a") as log:
                log.write(f"{b}\n")
        return done

    switch.exchange = logged_exchange
    sys.argv = argv
    sys.path[0] = str(Path(argv[0]).resolve().parent)
    runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--driver"]:
        _run_driver(sys.argv[2:])
    else:
        sys.exit(_run_cli(sys.argv[1:]))
