"""The lake's raw zone (``local/raw_zone``): a bad raw folder changes nothing, a switch killed
halfway is finished by the next run, and a disk that fills during the copy is one line."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rental_kpis import cli
from rental_kpis.devtools.datagen import generate
from rental_kpis.errors import InputError
from rental_kpis.layout import DATASETS, Lake
from rental_kpis.local import glue as catalog
from rental_kpis.local.lock import LOCK_FILE
from rental_kpis.local.raw_zone import check_raw, load_raw
from rental_kpis.local.run_records import run_history
from rental_kpis.local.runner import run_local
from rental_kpis.spark import switch


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("raw")
    generate(folder, 2_000, seed=14, defect_rate=0.001)
    return folder


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root``: (size, inode) by relative path, to prove nothing changed."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_ino)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _record(lake_dir: Path, run_id: str) -> dict:
    try:
        return json.loads((lake_dir / "runs" / run_id / "run.json").read_text())
    except (OSError, ValueError):
        return {}


@pytest.fixture
def loaded_lake(raw, tmp_path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    load_raw(raw, lake)
    return lake


def _broken_raw(raw: Path, tmp_path: Path, how: str) -> Path:
    broken = tmp_path / f"raw_{how}"
    shutil.copytree(raw, broken)
    if how == "missing_users":
        shutil.rmtree(broken / "users")
    elif how == "bad_header":  # the last dataset's file lacks a SPEC column
        path = next((broken / DATASETS[-1]).glob("*.csv"))
        lines = path.read_text().splitlines(keepends=True)
        path.write_text(lines[0].replace("total_amount", "amount") + "".join(lines[1:]))
    elif how == "utf16":
        path = next((broken / DATASETS[-1]).glob("*.csv"))
        path.write_bytes(path.read_text().encode("utf-16"))
    elif how == "second_file_disagrees":
        path = next((broken / "vehicles").glob("*.csv"))
        text = path.read_text().splitlines(keepends=True)
        (broken / "vehicles" / "more.csv").write_text("x,y\n" + "".join(text[1:3]))
    return broken


@pytest.mark.parametrize("how", ["missing_users", "bad_header", "utf16", "second_file_disagrees"])
def it_changes_nothing_in_the_lake_when_a_new_raw_folder_is_bad(raw, loaded_lake, tmp_path, how):
    broken = _broken_raw(raw, tmp_path, how)
    root = Path(loaded_lake.root)
    before = _tree(root)
    with pytest.raises(InputError):
        check_raw(broken)
    with pytest.raises(InputError):
        run_local(broken, root, run_id="bad", steps=("validate_raw",))
    after = {k: v for k, v in _tree(root).items() if not k.startswith(("runs/", LOCK_FILE))}
    assert after == {k: v for k, v in before.items() if not k.startswith(LOCK_FILE)}
    assert _record(root, "bad")["status"] == "failed"


def it_finishes_a_raw_zone_switch_killed_halfway_on_the_next_run(raw, tmp_path):
    """The raw zone of a run killed after switching one dataset of four: the next run (here:
    its recovery under the lock, then a crawl that also takes the lock) completes it."""
    lake_dir = tmp_path / "lake"
    lake = Lake(str(lake_dir))
    load_raw(raw, lake)
    other = tmp_path / "raw2"
    generate(other, 500, seed=99)
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path\n"
            "from rental_kpis.layout import Lake\n"
            "from rental_kpis.local.raw_zone import load_raw\n"
            "load_raw(Path(sys.argv[1]), Lake(sys.argv[2]))",
            str(other),
            str(lake_dir),
        ],
        env={**os.environ, switch.FAULT_ENV: "1"},
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL
    first = DATASETS[0]
    files = {d: sorted(p.read_bytes() for p in (lake_dir / "raw" / d).iterdir()) for d in DATASETS}
    assert files[first] == sorted(p.read_bytes() for p in (other / first).iterdir())
    assert files[DATASETS[1]] == sorted(p.read_bytes() for p in (raw / DATASETS[1]).iterdir())
    catalog.crawl(lake)  # takes the lock and finishes the switch before cataloguing
    for dataset in DATASETS:
        got = sorted(p.read_bytes() for p in (lake_dir / "raw" / dataset).iterdir())
        assert got == sorted(p.read_bytes() for p in (other / dataset).iterdir())
    assert not list((lake_dir / switch.JOURNAL_DIR).glob("*.json"))


FULL = "No space left on device"


def _one_line_of(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("rental-kpis: error: "), lines
    return lines[0]


def it_says_in_one_line_that_the_disk_filled_during_the_raw_copy(
    raw, tmp_path, monkeypatch, capsys
):
    real_copy = shutil.copy2
    copied: list[str] = []

    def copy_until_full(source, target, **kwargs):
        if copied:  # the first file fits, the second finds the disk full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
        copied.append(str(source))
        return real_copy(source, target, **kwargs)

    monkeypatch.setattr(shutil, "copy2", copy_until_full)
    lake_dir = tmp_path / "lake"
    code = cli.main(["run", "--raw", str(raw), "--lake", str(lake_dir), "--run-id", "full"])
    monkeypatch.undo()
    assert code == 2
    line = _one_line_of(capsys)
    assert FULL in line and "the raw zone is as it was" in line
    assert [p.name for p in (lake_dir / "raw").iterdir()] == ["_staging"]
    assert list((lake_dir / "raw" / "_staging").iterdir()) == []
    (record,) = run_history(Lake(str(lake_dir)))  # recorded, never gone in silence
    assert record["status"] == "failed" and FULL in record["error"]
