"""What the project writes and deletes on a user's disk: ``report --out`` and ``make clean``.

Each test keeps real folders of a user beside the ones the command is pointed at, and checks
they come through untouched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_runner import assert_one_line_error, run_cli

from rental_kpis.cli import main
from rental_kpis.devtools.datagen import generate
from rental_kpis.errors import NotebookFailed
from rental_kpis.layout import Lake
from rental_kpis.local import glue as catalog
from rental_kpis.local.lock import LOCK_FILE
from rental_kpis.local.raw_zone import load_raw
from rental_kpis.project import NOTEBOOK_DIR, PROJECT_DIR
from rental_kpis.report import notebooks as report


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------- report --out


@pytest.fixture
def executed(monkeypatch) -> list[str]:
    """``report.execute`` replaced: records each notebook, writes its target (never over a
    source notebook), and fails on the second one (a report that fails part-way). No kernel
    starts."""
    calls: list[str] = []

    def execute(source: Path, target: Path, parameters: dict[str, str]) -> None:
        calls.append(source.stem)
        if target.resolve().parent != NOTEBOOK_DIR.resolve():
            target.write_text(f"executed {source.stem}")
        if len(calls) == 2:
            raise NotebookFailed(source.stem, "ValueError: boom", str(target))

    monkeypatch.setattr(report, "execute", execute)
    return calls


@pytest.mark.parametrize("how", ["the folder", "a link to it"])
def it_refuses_to_write_the_report_over_the_source_notebooks(tmp_path, executed, capsys, how):
    before = _digests(NOTEBOOK_DIR)
    out = NOTEBOOK_DIR
    if how == "a link to it":
        out = tmp_path / "notebooks"
        out.symlink_to(NOTEBOOK_DIR)

    code = main(["report", "--out", str(out), "--lake", str(tmp_path / "lake")])

    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"rental-kpis: error: --out {out} is the folder of the source notebooks: their "
        "executed copies would replace them; choose another folder (default: reports)"
    ]
    assert executed == []
    assert _digests(NOTEBOOK_DIR) == before


def it_refuses_a_report_folder_that_is_a_file(tmp_path):
    mine = tmp_path / "report.txt"
    mine.write_text("mine")
    done = run_cli("report", "--out", str(mine), "--lake", str(tmp_path / "lake"), timeout=120)
    assert_one_line_error(done, f"--out {mine} is a file")
    assert mine.read_text() == "mine"
    under = tmp_path / "report.txt" / "out"
    done = run_cli("report", "--out", str(under), "--lake", str(tmp_path / "lake"), timeout=120)
    assert_one_line_error(done, f"--out {under} cannot be written")


def it_leaves_nothing_of_the_previous_report_beside_a_failed_one(tmp_path, executed):
    out = tmp_path / "reports"
    out.mkdir()
    for path in report.report_files(out):
        path.write_text("the previous report")
    notes = out / "notes.md"
    notes.write_text("a user's notes")

    with pytest.raises(NotebookFailed):
        report.build(tmp_path / "lake", out, tmp_path / "raw", run_id="r1")

    assert executed == list(report.NOTEBOOKS[:2])
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{name}.ipynb" for name in report.NOTEBOOKS[:2]] + ["notes.md"]
    )
    assert not (out / report.HTML_NAME).exists()
    assert notes.read_text() == "a user's notes"


# ---------------------------------------------------------------- make clean

# ``rm`` as make's recipes meet it on the PATH: logs every call, and deletes only inside the
# test's folder (an argument outside it is logged, never run).
RM_SHIM = """#!/bin/sh
printf '%s\\n' "$@" >> "$RM_LOG"
for arg in "$@"; do
  case "$arg" in -*) ;; "$TEST_ROOT"/*) ;; /*) exit 0 ;; esac
done
exec /bin/rm "$@"
"""


def make_clean(
    tmp_path: Path,
    makefile: Path = PROJECT_DIR / "Makefile",
    cwd: Path | None = None,
    shims: dict[str, str] | None = None,
    **variables: str,
) -> list[str]:
    """``make clean`` in ``cwd`` (``tmp_path``) with ``variables`` exported by the shell, as a
    user's environment would, and ``shims`` (name: script) first on the PATH; the arguments
    ``rm`` was called with."""
    shim = tmp_path / "shim"
    shutil.rmtree(shim, ignore_errors=True)
    shim.mkdir()
    for name, script in {"rm": RM_SHIM, **(shims or {})}.items():
        (shim / name).write_text(script)
        (shim / name).chmod(0o755)
    log = tmp_path / "rm.log"
    log.write_text("")
    env = {
        "PATH": f"{shim}:{os.environ['PATH']}",
        "RM_LOG": str(log),
        "TEST_ROOT": str(tmp_path),
        "HOME": str(tmp_path),
        **variables,
    }
    done = subprocess.run(
        ["make", "--no-print-directory", "-f", str(makefile), "clean"],
        cwd=cwd or tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return log.read_text().splitlines()


def it_cleans_the_lake_only_when_it_is_a_lake_the_project_made(tmp_path):
    files = {}
    for name in ("docs", "home"):  # a user's folder; one that a run once used as its lake
        (tmp_path / name).mkdir()
        files[name] = tmp_path / name / "letter.txt"
        files[name].write_text("keep me")
    (tmp_path / "home" / LOCK_FILE).write_text("")
    lake = Lake(str(tmp_path / "lake"))
    raw = tmp_path / "raw"
    generate(raw, 100, seed=1)
    load_raw(raw, lake)
    catalog.crawl(lake)

    make_clean(tmp_path, LAKE=str(tmp_path / "docs"), REPORTS=str(tmp_path / "reports"))
    make_clean(tmp_path, LAKE=str(tmp_path / "home"), REPORTS=str(tmp_path / "reports"))
    make_clean(tmp_path, LAKE="", REPORTS=str(tmp_path / "reports"))

    assert all(path.read_text() == "keep me" for path in files.values())
    assert Path(lake.root).is_dir()
    make_clean(tmp_path, LAKE=lake.root, REPORTS=str(tmp_path / "reports"))
    assert not Path(lake.root).exists()
    assert raw.is_dir()


def it_removes_only_the_report_files_it_wrote(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    for path in report.report_files(reports):
        path.write_text("a report")
    mine = [reports / "mine.ipynb", reports / "page.html"]
    for path in mine:
        path.write_text("the user's")

    make_clean(tmp_path, LAKE=str(tmp_path / "lake"), REPORTS=str(reports))

    assert sorted(reports.iterdir()) == sorted(mine)
    called = make_clean(tmp_path, LAKE=str(tmp_path / "lake"), REPORTS="")
    outside = [a for a in called if a.startswith("/") and not a.startswith(f"{tmp_path}/")]
    assert outside == []  # never rm /*.ipynb /*.html
    assert sorted(reports.iterdir()) == sorted(mine)


def it_keeps_the_source_notebooks_whatever_names_notebooks_as_the_report_folder(tmp_path):
    # a copy of the project: its Makefile and notebooks/, which clean must never empty
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / "Makefile").write_bytes((PROJECT_DIR / "Makefile").read_bytes())
    sources = {name: f"source {name}" for name in report.NOTEBOOKS}
    for name, text in sources.items():
        (project / "notebooks" / f"{name}.ipynb").write_text(text)
    (project / "link").symlink_to("notebooks")
    (tmp_path / "elsewhere").symlink_to(project / "notebooks")
    for reports in ("notebooks", "notebooks/", "./notebooks", "link", "link/",
                    "../project/notebooks", str(project / "notebooks"),
                    str(tmp_path / "elsewhere")):  # fmt: skip
        make_clean(tmp_path, project / "Makefile", project, LAKE="", REPORTS=reports)
        make_clean(tmp_path, project / "Makefile", LAKE="", REPORTS=reports)  # from elsewhere
    for name, text in sources.items():
        assert (project / "notebooks" / f"{name}.ipynb").read_text() == text

    reports = project / "reports"  # a report folder beside them is still cleaned
    reports.mkdir()
    for path in report.report_files(reports):
        path.write_text("a report")
    make_clean(tmp_path, project / "Makefile", project, LAKE="", REPORTS="reports")
    assert list(reports.iterdir()) == []


def _lake_named(folder: Path) -> Path:
    folder.mkdir()
    (folder / LOCK_FILE).write_text("")
    (folder / "precious.txt").write_text("keep me")
    return folder


def it_reads_a_lake_named_like_an_option_as_a_folder(tmp_path):
    lake = _lake_named(tmp_path / "-x")  # find read it as a predicate, failed, and rm ran
    make_clean(tmp_path, LAKE="-x", REPORTS="")
    assert (lake / "precious.txt").read_text() == "keep me"


FAILING_FIND = """#!/bin/sh
echo "find: something went wrong" >&2
exit 1
"""


def it_keeps_a_lake_it_could_not_list(tmp_path):
    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / LOCK_FILE).write_text("")  # a lake, but find fails: nothing is known of it
    (lake / "runs").mkdir()
    make_clean(tmp_path, shims={"find": FAILING_FIND}, LAKE="lake", REPORTS="")
    assert (lake / "runs").is_dir()
    make_clean(tmp_path, LAKE="lake", REPORTS="")  # listed: it goes
    assert not lake.exists()


def it_keeps_a_lake_that_holds_the_raw_input(tmp_path):
    """`make run LAKE=data` (RAW: data/raw) made data/ a lake around the input, before run
    refused that: `make clean LAKE=data` then deleted the user's data."""
    data = tmp_path / "data"
    generate(data / "raw", 100, seed=1)
    (data / LOCK_FILE).write_text("")  # only a lake's entries: raw/ and the lock
    before = _digests(data / "raw")
    make_clean(tmp_path, LAKE="data", REPORTS="")  # RAW's default: data/raw
    make_clean(tmp_path, LAKE=str(data), RAW=str(data / "raw"), REPORTS="")
    (tmp_path / "link").symlink_to(data)
    make_clean(tmp_path, LAKE="data", RAW="link/raw/users", REPORTS="")
    assert _digests(data / "raw") == before
    make_clean(tmp_path, LAKE="data", RAW="elsewhere", REPORTS="")  # another input: it goes
    assert not data.exists()
