"""The JVM class archive that local Spark runs start from: built from a real run,
mapped by every local JVM when it fits, and never in the way when it does not."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from rental_kpis.cli import main
from rental_kpis.devtools.datagen import generate
from rental_kpis.local import class_archive
from rental_kpis.local.class_archive import (
    ARCHIVE_RUN_DEFECT_RATE,
    ARCHIVE_RUN_TRANSACTIONS,
    build_class_archive,
)
from rental_kpis.local.submit import spark_submit_command
from rental_kpis.spark import session
from rental_kpis.spark.session import (
    CLASS_ARCHIVE_BASE,
    CLASS_ARCHIVE_TOP,
    JAVA_OPTIONS,
    LOCAL_CONF,
    class_archive_dir,
    local_environment,
    with_class_archive,
)

SYSTEM_JAVA = local_environment()["JAVA_HOME"]


def _fake_archive(root: Path, java_home: str = SYSTEM_JAVA) -> tuple[Path, Path]:
    folder = class_archive_dir(java_home, root)
    folder.mkdir(parents=True)
    base, top = folder / CLASS_ARCHIVE_BASE, folder / CLASS_ARCHIVE_TOP
    base.write_bytes(b"base")
    top.write_bytes(b"top")
    return base, top


def it_changes_no_setting_when_the_installation_has_no_archive(tmp_path):
    assert with_class_archive(None, SYSTEM_JAVA, tmp_path) == {}
    assert with_class_archive({JAVA_OPTIONS: "-Dx=1"}, SYSTEM_JAVA, tmp_path) == {
        JAVA_OPTIONS: "-Dx=1"
    }


def it_maps_both_archives_after_the_options_a_run_already_has(tmp_path):
    base, top = _fake_archive(tmp_path)
    archive = f"-XX:SharedArchiveFile={base}:{top} -Xlog:cds*=off"
    assert with_class_archive({JAVA_OPTIONS: "-Dx=1"}, SYSTEM_JAVA, tmp_path) == {
        JAVA_OPTIONS: f"-Dx=1 {archive}"
    }
    # a run with no options of its own keeps the local ones (the log4j configuration)
    assert with_class_archive({}, SYSTEM_JAVA, tmp_path) == {
        JAVA_OPTIONS: f"{LOCAL_CONF[JAVA_OPTIONS]} {archive}"
    }


def it_leaves_options_that_choose_or_dump_an_archive_of_their_own(tmp_path):
    _fake_archive(tmp_path)
    for own in ("-XX:SharedArchiveFile=/x.jsa", "-XX:ArchiveClassesAtExit=/y.jsa"):
        assert with_class_archive({JAVA_OPTIONS: own}, SYSTEM_JAVA, tmp_path) == {JAVA_OPTIONS: own}


def it_maps_no_archive_for_a_flight_recording(tmp_path):
    """Java 17 with the archive mapped died at start under Java Flight Recorder."""
    _fake_archive(tmp_path)
    profiled = "-Dx=1 -XX:StartFlightRecording=filename=/tmp/run.jfr,settings=profile"
    assert with_class_archive({JAVA_OPTIONS: profiled}, SYSTEM_JAVA, tmp_path) == {
        JAVA_OPTIONS: profiled
    }


def it_ignores_an_archive_made_for_another_java(tmp_path):
    _fake_archive(tmp_path, SYSTEM_JAVA)
    other = tmp_path / "another-jdk"
    (other / "lib").mkdir(parents=True)
    (other / "lib" / "modules").write_bytes(b"another build")
    assert class_archive_dir(str(other), tmp_path) != class_archive_dir(SYSTEM_JAVA, tmp_path)
    assert with_class_archive({}, str(other), tmp_path) == {}


def it_names_the_archive_after_the_java_runtime_it_was_made_with(tmp_path):
    home = tmp_path / "jdk"
    (home / "lib").mkdir(parents=True)
    modules = home / "lib" / "modules"
    modules.write_bytes(b"one build")
    before = class_archive_dir(str(home), tmp_path)
    modules.write_bytes(b"another build")
    assert class_archive_dir(str(home), tmp_path) != before


def it_says_why_no_archive_was_built_and_lets_install_go_on(tmp_path, monkeypatch, capsys):
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text("#!/bin/sh\necho 'Error: CDS is disabled' >&2\nexit 1\n")
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(home))
    monkeypatch.setattr(session, "class_archive_root", lambda: tmp_path / "archives")
    assert main(["class-archive"]) == 0
    out = capsys.readouterr().out
    assert out == (
        "class archive not built (java -Xshare:dump failed: Error: CDS is disabled); "
        "local Spark runs start without it\n"
    )
    assert list((tmp_path / "archives").iterdir()) == []  # no half-built folder left


def it_starts_spark_submit_from_the_installed_archive(tmp_path):
    """The installation's archive (``make install`` builds it; built here if it is missing,
    as ``rental-kpis class-archive`` would) maps thousands of Spark's classes."""
    raw = tmp_path / "raw"
    generate(raw, ARCHIVE_RUN_TRANSACTIONS, defect_rate=ARCHIVE_RUN_DEFECT_RATE)
    folder, _ = build_class_archive(raw)
    assert sorted(p.name for p in folder.iterdir()) == ["base.jsa", "top.jsa"]
    assert build_class_archive(raw) == (folder, False)

    log = tmp_path / "classes.log"
    conf = with_class_archive({JAVA_OPTIONS: "-Xshare:on"}, SYSTEM_JAVA)
    assert "SharedArchiveFile" in conf[JAVA_OPTIONS]
    conf[JAVA_OPTIONS] += f" -Xlog:class+load=info:file={log}"
    submit = spark_submit_command(Path("unused.py"), [], [])[0]
    # `spark-submit --version`: a JVM started as every local run starts it, then done
    command = [submit, "--conf", f"{JAVA_OPTIONS}={conf[JAVA_OPTIONS]}", "--version"]
    subprocess.run(command, env=local_environment(), capture_output=True, check=True, timeout=120)
    loaded = log.read_text().splitlines()
    from_archive = [line for line in loaded if "source: shared objects file (top)" in line]
    assert any("org.apache.spark.deploy.SparkSubmit " in line for line in from_archive)
    assert len(from_archive) > 1000, f"{len(from_archive)} of {len(loaded)} classes mapped"


def it_does_not_map_an_archive_whose_path_spark_would_split(tmp_path):
    """Spark splits Java options at blanks: such a path would stop every JVM from starting."""
    root = tmp_path / "my archives"
    _fake_archive(root)
    assert with_class_archive({}, SYSTEM_JAVA, root) == {}


def it_replaces_an_incomplete_archive_and_removes_abandoned_work(tmp_path, monkeypatch):
    def base(java_home: Path, target: Path) -> Path:
        target.write_bytes(b"new base")
        return target

    monkeypatch.setattr(class_archive, "_base_archive", base)
    monkeypatch.setattr(
        class_archive, "_top_archive", lambda raw, work, base, target: target.write_bytes(b"top")
    )
    root = tmp_path / "archives"
    folder = class_archive_dir(SYSTEM_JAVA, root)
    folder.mkdir(parents=True)
    (folder / CLASS_ARCHIVE_BASE).write_bytes(b"a build killed before its top archive")
    abandoned, running = root / ".building-killed", root / ".building-running"
    abandoned.mkdir()
    running.mkdir()
    hours_ago = time.time() - 2 * 3600
    os.utime(abandoned, (hours_ago, hours_ago))

    assert build_class_archive(tmp_path, root) == (folder, True)
    assert (folder / CLASS_ARCHIVE_BASE).read_bytes() == b"new base"
    assert sorted(p.name for p in root.iterdir()) == [".building-running", folder.name]
    assert build_class_archive(tmp_path, root) == (folder, False)
