"""EMR's step runner, locally: ``spark-submit`` of a step script with the zipped library.

The same command line EMR's ``command-runner.jar`` runs, on ``local[*]`` or a standalone
master on this machine, with the small-machine settings of ``spark.session``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import signal
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from rental_kpis.errors import UsageError
from rental_kpis.local.lock import RUN_TOKEN_ENV, kill_token_processes
from rental_kpis.spark.session import (
    LOCAL_CONF,
    SESSION_CONF,
    local_environment,
    with_class_archive,
)

# How long a stopped child gets between SIGTERM (the JVM's shutdown hooks stop its Python
# workers) and SIGKILL.
STOP_GRACE_SECONDS = 5.0
_PR_SET_PDEATHSIG = 1


def _find_prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` where the system has one (Linux), else None (macOS)."""
    return getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)


# The Linux-only call that makes the child die with us; None where it does not exist.
_prctl = _find_prctl()


# The master URLs spark-submit takes (Spark's "Master URLs" in "Submitting Applications").
MASTER = re.compile(
    r"local(\[(\*|[1-9][0-9]*)(,\s*[1-9][0-9]*)?\])?"
    r"|local-cluster\[[1-9][0-9]*,\s*[1-9][0-9]*,\s*[1-9][0-9]*\]"
    r"|(spark|mesos|k8s)://\S+|yarn"
)


def check_master(master: str) -> str:
    """``master`` itself when it has the shape of a Spark master URL, else UsageError: one
    line saying which shapes work, before any process starts."""
    if not MASTER.fullmatch(master):
        raise UsageError(
            f"--master {master!r} is not a Spark master URL: use local, local[N], local[*], "
            "spark://HOST:PORT, yarn, k8s://URL or mesos://URL"
        )
    return master


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
    token: str | None = None,
    keep_fds: tuple[int, ...] = (),
) -> subprocess.Popen:
    """Start one spark-submit; its stdout and stderr come merged, line by line, as text.

    The step's own Python files come from the zip only: the working directory is a fresh one
    and PYTHONPATH is dropped, so a module missing from the zip fails here rather than on a
    cluster.

    The child is a process tree we must be able to stop whole (``stop_spark_submit``): it
    runs in a session (process group) of its own, so a Ctrl-C on our terminal reaches us
    and not the JVM behind our back; every process of it carries ``token`` in its
    environment, because pyspark's workers leave the group. ``keep_fds`` (the lake lock) stay
    open in it. Where the system has ``prctl`` (Linux) it also dies with us
    (PR_SET_PDEATHSIG) if we are killed without a chance to clean up; elsewhere it outlives
    us holding the lock, and the next holder of the lake stops it by its token
    (``lock.lake_lock``).
    """
    env = local_environment()
    conf = with_class_archive(conf, env["JAVA_HOME"])
    command = spark_submit_command(script, args, py_files, master, conf, driver_memory)
    env.pop("PYTHONPATH", None)
    env[RUN_TOKEN_ENV] = token or secrets.token_hex(8)
    workdir = workdir or Path.cwd()
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        command,
        env=env,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,
        preexec_fn=_die_with_parent if _prctl is not None else None,
        pass_fds=keep_fds,
    )
    proc.rental_kpis_token = env[RUN_TOKEN_ENV]  # type: ignore[attr-defined]
    return proc


def _die_with_parent() -> None:  # runs in the child between fork and exec
    assert _prctl is not None  # installed as preexec_fn only when prctl was found
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def stop_spark_submit(proc: subprocess.Popen, grace: float = STOP_GRACE_SECONDS) -> None:
    """Stop a ``start_spark_submit`` child and everything it started; return when none lives.

    SIGTERM to its process group first (the JVM's shutdown hooks stop the Python workers),
    SIGKILL after ``grace`` seconds, then SIGKILL to any process that still carries its token
    (workers in groups of their own). Safe to call on a child that already exited.
    """
    token: str | None = getattr(proc, "rental_kpis_token", None)
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(grace)
    _signal_group(proc.pid, signal.SIGKILL)  # the group may outlive its leader
    if token:
        kill_token_processes(token)
    if proc.stdout is not None:
        proc.stdout.close()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


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
    try:
        output, _ = proc.communicate()
    finally:
        stop_spark_submit(proc)
    if log_path:
        log_path.write_text(output)
    # start_spark_submit runs spark_submit_command's list of strings.
    return SubmitResult(proc.returncode, output, list(cast("list[str]", proc.args)))
