"""The Spark steps of a local run as one application (``local/spark_app``): a step log the
OS refuses to write is one line, and no process of the application is left."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from rental_kpis import cli
from rental_kpis.devtools.datagen import generate
from rental_kpis.layout import Lake
from rental_kpis.local import spark_app
from rental_kpis.local.run_records import run_history


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("raw")
    generate(folder, 2_000, seed=14, defect_rate=0.001)
    return folder


FULL = "No space left on device"


def _one_line_of(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("rental-kpis: error: "), lines
    return lines[0]


def it_says_in_one_line_that_the_disk_filled_while_a_step_log_was_written(
    raw, tmp_path, monkeypatch, capsys
):
    """The application's output goes to a log on a device that is full (``/dev/full``,
    swapped in under the open log): the run stops its application and says so."""
    stopped: list[object] = []

    class Application:  # a spark-submit that prints its start and exits
        stdout = iter(["Spark starting\n"] * 100)

        def wait(self) -> int:
            return 0

    def submit(*args, workdir, **kwargs):
        log = workdir / "validate_raw.log"
        for fd in map(int, os.listdir("/proc/self/fd")):
            with contextlib.suppress(OSError):
                if Path(os.readlink(f"/proc/self/fd/{fd}")) == log:
                    full = os.open("/dev/full", os.O_WRONLY)
                    os.dup2(full, fd)
                    os.close(full)
        return Application()

    monkeypatch.setattr(spark_app, "start_spark_submit", submit)
    monkeypatch.setattr(spark_app, "stop_spark_submit", stopped.append)
    lake_dir = tmp_path / "lake"
    code = cli.main(["run", "--raw", str(raw), "--lake", str(lake_dir), "--run-id", "full"])
    assert code == 2
    log = lake_dir / "runs" / "full" / "validate_raw.log"
    assert f"step validate_raw: cannot write its log {log}: {FULL}" in _one_line_of(capsys)
    assert len(stopped) == 1
    (record,) = run_history(Lake(str(lake_dir)))
    assert record["status"] == "failed" and FULL in record["error"]
