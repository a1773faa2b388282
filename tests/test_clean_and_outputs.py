"""What the project writes and deletes on a user's disk: ``report --out`` and ``make clean``.

Each test keeps real folders of a user beside the ones the command is pointed at, and checks
they come through untouched.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cli_runner import run_cli
from test_security_paths import assert_one_line_error

from rental_kpis.cli import main
from rental_kpis.errors import NotebookFailed
from rental_kpis.project import NOTEBOOK_DIR
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
