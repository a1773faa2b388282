"""EMR's step runner, locally: ``spark-submit`` of a step script with the zipped library.

The same command line EMR's ``command-runner.jar`` runs, on ``local[*]`` or a standalone
master on this machine, with the small-machine settings of ``spark.session``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rental_kpis.spark.session import LOCAL_CONF, SESSION_CONF, local_environment


@dataclass
class SubmitResult:
    returncode: int
    output: str
    command: list[str] = field(default_factory=list)


def spark_submit_command(
    script: Path,
    args: list[str],
    py_files: list[Path],
    master: str = "local[*]",
    conf: Mapping[str, str] | None = None,
    driver_memory: str = "2g",
) -> list[str]:
    """The spark-submit command line for one step: pure, so tests can read it."""
    import pyspark

    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    # Every launch from this machine (local[*] or a standalone master on 127.0.0.1) gets the
    # small-machine settings; EMR steps are built elsewhere with the cluster's defaults.
    settings = {**SESSION_CONF, **LOCAL_CONF, **(conf or {})}
    command = [str(submit), "--master", master, "--driver-memory", driver_memory]
    command += ["--py-files", ",".join(str(p) for p in py_files)]
    for key, value in settings.items():
        command += ["--conf", f"{key}={value}"]
    return [*command, str(script), *args]


def start_spark_submit(
    script: Path,
    args: list[str],
    py_files: list[Path],
    master: str = "local[*]",
    conf: Mapping[str, str] | None = None,
    driver_memory: str = "2g",
    workdir: Path | None = None,
) -> subprocess.Popen:
    """Start one spark-submit; its stdout and stderr come merged, line by line, as text.

    The step's own Python files come from the zip only: the working directory is a fresh one
    and PYTHONPATH is dropped, so a module missing from the zip fails here rather than on a
    cluster.
    """
    command = spark_submit_command(script, args, py_files, master, conf, driver_memory)
    env = local_environment()
    env.pop("PYTHONPATH", None)
    workdir = workdir or Path.cwd()
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        command,
        env=env,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )


def spark_submit(
    script: Path,
    args: list[str],
    py_files: list[Path],
    master: str = "local[*]",
    conf: Mapping[str, str] | None = None,
    driver_memory: str = "2g",
    log_path: Path | None = None,
) -> SubmitResult:
    """Run one step through spark-submit, as EMR does, and return its exit code and output."""
    workdir = log_path.parent if log_path else None
    proc = start_spark_submit(script, args, py_files, master, conf, driver_memory, workdir)
    output, _ = proc.communicate()
    if log_path:
        log_path.write_text(output)
    return SubmitResult(proc.returncode, output, list(proc.args))
