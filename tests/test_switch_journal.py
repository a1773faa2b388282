"""Switch journals name folders of their own lake only: relative to it, refused outside it.

Every test here has real folders outside a temporary lake (siblings under ``tmp_path`` holding
files) that must come through untouched: the journal is a file in the lake, and a lake is
something users copy, move and receive.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import assert_one_line_error, run_cli

from rental_kpis.devtools.datagen import generate
from rental_kpis.errors import InputError
from rental_kpis.layout import Lake
from rental_kpis.local.lock import LOCK_FILE
from rental_kpis.local.raw_zone import load_raw, recover_lake
from rental_kpis.local.runner import run_local
from rental_kpis.spark import fs, switch

NAMES = ["curated/a", "rejected/a", "curated/b"]
KILLED_SWITCH = """
import json, sys
from rental_kpis.spark import switch
switch.switch([tuple(p) for p in json.loads(sys.argv[1])], sys.argv[2])
"""


def _user_folders(tmp_path: Path) -> dict[Path, str]:
    """Two folders of a user beside the lake, each with a file: what must survive."""
    files = {}
    for name in ("photos", "docs"):
        (tmp_path / name).mkdir()
        path = tmp_path / name / f"{name}.txt"
        path.write_text(f"the user's {name}")
        files[path] = path.read_text()
    return files


def _intact(files: dict[Path, str]) -> bool:
    return all(path.exists() and path.read_text() == text for path, text in files.items())


def _journal(lake: Path, entries: list) -> Path:
    (lake / switch.JOURNAL_DIR).mkdir(parents=True, exist_ok=True)
    journal = lake / switch.JOURNAL_DIR / "0badc0ffee00.json"
    journal.write_text(json.dumps(entries))
    return journal


def _staged(lake: Path, tag: str) -> list[tuple[str, str]]:
    pairs = []
    for name in NAMES:
        zone, table = name.split("/")
        staging = lake / zone / "_staging" / f"{table}.{tag}"
        staging.mkdir(parents=True)
        (staging / "part-0").write_text(f"{name} {tag}")
        pairs.append((str(staging), str(lake / name)))
    return pairs


def _contents(lake: Path) -> list[str]:
    return [(lake / name / "part-0").read_text() for name in NAMES]


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but the lock (which a command makes) and its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != LOCK_FILE
    }


def _killed_mid_switch(lake: Path) -> None:
    """``lake`` with its three folders switched once, then a second switch SIGKILLed after
    its first pair: one folder new, two old, and the journal."""
    switch.switch(_staged(lake, "old"), str(lake))
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_SWITCH, json.dumps(_staged(lake, "fresh")), str(lake)],
        env={**os.environ, switch.FAULT_ENV: "1"},
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL
    assert _contents(lake) == ["curated/a fresh", "rejected/a old", "curated/b old"]


# ---------------------------------------------------------------- entries outside the lake


def _outside_entries(tmp_path: Path, lake: Path, how: str) -> list:
    photos, docs = tmp_path / "photos", tmp_path / "docs"
    if how == "absolute":  # another place, as a journal before entries were relative
        return [{"staging": str(photos), "target": str(docs), "inode": photos.stat().st_ino}]
    if how == "dotdot":
        return [{"staging": "../photos", "target": "../docs", "inode": photos.stat().st_ino}]
    # links inside the lake that lead out of it
    (lake / "processed").mkdir(parents=True)
    (lake / "processed" / "_staging").symlink_to(tmp_path)
    (lake / "processed" / "docs").symlink_to(docs)
    return [
        {
            "staging": "processed/_staging/photos",
            "target": "processed/docs",
            "inode": photos.stat().st_ino,
        }
    ]


@pytest.mark.parametrize("how", ["absolute", "dotdot", "links"])
def it_refuses_a_journal_that_names_folders_outside_the_lake(tmp_path, how):
    files = _user_folders(tmp_path)
    lake = tmp_path / "lake"
    journal = _journal(lake, _outside_entries(tmp_path, lake, how))

    # crawl, with the lake as working directory (where a relative entry used to resolve)
    done = run_cli("crawl", "--lake", str(lake), cwd=lake, timeout=120)
    assert_one_line_error(done, str(journal), "delete", "nothing was changed")
    assert _intact(files)
    assert journal.exists()
    # run (under the lock, before anything else) and notebook 01's upload (load_raw)
    with pytest.raises(switch.JournalRefused, match=r"outside the lake|leads out of the lake"):
        run_local(None, lake, run_id="r1", steps=("crawl",))
    generate(tmp_path / "raw", 500, seed=3)
    with pytest.raises(switch.JournalRefused):
        load_raw(tmp_path / "raw", Lake(str(lake)))
    assert _intact(files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "lake", "photos", "raw"]


def it_refuses_every_journal_before_replaying_any(tmp_path):
    """A lake with a sound journal and one naming another place: nothing is replayed."""
    files = _user_folders(tmp_path)
    lake = tmp_path / "lake"
    _killed_mid_switch(lake)
    photos = tmp_path / "photos"
    bad = lake / switch.JOURNAL_DIR / "ffffffffffff.json"
    bad.write_text(json.dumps([{"staging": str(photos), "target": "x", "inode": 1}]))
    before = _tree(lake)
    with pytest.raises(switch.JournalRefused, match=str(bad)):
        switch.recover(str(lake))
    assert _tree(lake) == before
    assert _intact(files)


def it_refuses_a_staging_entry_that_is_not_in_a_staging_folder(tmp_path):
    lake = tmp_path / "lake"
    (lake / "runs" / "r1").mkdir(parents=True)
    (lake / "runs" / "r1" / "run.json").write_text("{}")
    _journal(lake, [{"staging": "runs", "target": "processed/t", "inode": 1}])
    with pytest.raises(switch.JournalRefused, match="not a staging folder"):
        recover_lake(Lake(str(lake)))
    assert (lake / "runs" / "r1" / "run.json").read_text() == "{}"


# ---------------------------------------------------------------- copied and moved lakes


def it_writes_journal_entries_relative_to_the_lake(tmp_path):
    lake = tmp_path / "lake"
    _killed_mid_switch(lake)
    (journal,) = (lake / switch.JOURNAL_DIR).glob("*.json")
    entries = json.loads(journal.read_text())
    assert [(e["staging"], e["target"]) for e in entries] == [
        (f"{name.split('/')[0]}/_staging/{name.split('/')[1]}.fresh", name) for name in NAMES
    ]


def it_finishes_the_switch_of_a_copied_lake_in_the_copy_only(tmp_path):
    original = tmp_path / "lake"
    _killed_mid_switch(original)
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(original), str(copy)], check=True)
    before = _tree(original)

    done = run_cli("crawl", "--lake", str(copy), timeout=120)

    assert done.returncode == 0, done.stderr
    assert _contents(copy) == [f"{name} fresh" for name in NAMES]
    assert not list((copy / switch.JOURNAL_DIR).glob("*.json"))
    assert _tree(original) == before  # the original's switch is the original's business


@pytest.mark.parametrize("same_bytes", [True, False])
def it_tells_the_new_folder_of_a_copy_by_its_files_or_refuses(tmp_path, same_bytes):
    """Old and new folders with the same file names and sizes: the same bytes need no switch;
    different bytes cannot be told apart in a copy, and nothing is replayed."""
    original = tmp_path / "lake"
    switch.switch(_staged(original, "old"), str(original))
    pairs = _staged(original, "new" if not same_bytes else "old")
    subprocess.run(
        [sys.executable, "-c", KILLED_SWITCH, json.dumps(pairs), str(original)],
        env={**os.environ, switch.FAULT_ENV: "1"},
        timeout=60,
    )
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(original), str(copy)], check=True)
    before = _tree(copy)
    if same_bytes:
        switch.recover(str(copy))
        assert _contents(copy) == [f"{name} old" for name in NAMES]
        assert not list((copy / "curated" / "_staging").iterdir())
    else:
        with pytest.raises(switch.JournalRefused, match="cannot tell whether"):
            switch.recover(str(copy))
        assert _tree(copy) == before


def it_finishes_the_switch_of_a_moved_lake_where_it_now_is(tmp_path):
    lake = tmp_path / "lake"
    _killed_mid_switch(lake)
    moved = tmp_path / "moved"
    lake.rename(moved)

    done = run_cli("crawl", "--lake", str(moved), timeout=120)

    assert done.returncode == 0, done.stderr
    assert _contents(moved) == [f"{name} fresh" for name in NAMES]
    assert not lake.exists()  # the old path is not made again
    run_local(None, moved, run_id="after", steps=("crawl",))
    assert not lake.exists()


def _old_format(lake: Path) -> Path:
    """The journal of ``lake`` as the code before relative entries wrote it: absolute paths."""
    (journal,) = (lake / switch.JOURNAL_DIR).glob("*.json")
    entries = json.loads(journal.read_text())
    for entry in entries:
        entry["staging"], entry["target"] = (str(lake / entry[k]) for k in ("staging", "target"))
    journal.write_text(json.dumps(entries))
    return journal


def it_replays_an_old_absolute_journal_only_in_the_lake_it_names(tmp_path):
    original = tmp_path / "lake"
    _killed_mid_switch(original)
    _old_format(original)
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(original), str(copy)], check=True)
    (copied_journal,) = (copy / switch.JOURNAL_DIR).glob("*.json")
    before, copy_before = _tree(original), _tree(copy)

    # the copy's journal names the original: refused, neither lake touched
    done = run_cli("crawl", "--lake", str(copy), timeout=120)
    assert_one_line_error(done, str(copied_journal), f"delete {copied_journal}")
    assert _tree(original) == before
    assert _tree(copy) == copy_before

    # the lake it was written in (upgraded in place) replays it
    assert run_cli("crawl", "--lake", str(original), timeout=120).returncode == 0
    assert _contents(original) == [f"{name} fresh" for name in NAMES]


# ---------------------------------------------------------------- the Hadoop (S3) path


def _mounted(spark, **links: Path) -> str:
    """A fresh ``viewfs://`` mount table with ``/<name>`` → folder links; its URI. Through it
    ``spark.fs`` takes its object-store path, as on S3."""
    table = f"journal{secrets.token_hex(4)}"
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    for name, folder in links.items():
        conf.set(f"fs.viewfs.mounttable.{table}.link./{name}", folder.resolve().as_uri())
    return f"viewfs://{table}"


@pytest.mark.parametrize("entry", ["absolute", "dotdot"])
def it_refuses_a_hadoop_journal_that_names_folders_outside_the_lake(spark, tmp_path, entry):
    files = _user_folders(tmp_path)
    lake = tmp_path / "lake"
    lake.mkdir()
    mount = _mounted(spark, bucket=lake, outside=tmp_path)
    if entry == "absolute":
        pair = [f"{mount}/outside/photos", f"{mount}/outside/docs"]
    else:
        pair = ["../outside/photos", "../outside/docs"]
    journal = _journal(lake, [pair])

    with pytest.raises(switch.JournalRefused, match="outside the lake") as refused:
        fs.recover_switches(spark, f"{mount}/bucket")

    assert journal.name in str(refused.value)
    assert _intact(files)
    assert journal.exists()


def it_writes_hadoop_journals_relative_to_the_lake_so_a_copy_replays_its_own(
    spark, tmp_path, monkeypatch
):
    lake = tmp_path / "lake"
    for tag in ("old", "fresh"):
        staging = lake / "processed" / "_staging" / f"t.{tag}"
        staging.mkdir(parents=True)
        (staging / "part-0").write_text(tag)
    (lake / "processed" / "_staging" / "t.old").rename(lake / "processed" / "t")
    copy = tmp_path / "copy"
    mount = _mounted(spark, lake=lake, copy=copy)

    def killed(*args):
        raise KeyboardInterrupt  # the step dies after its journal, before any folder moves

    monkeypatch.setattr(fs, "_hadoop_apply", killed)
    root = f"{mount}/lake"
    with pytest.raises(KeyboardInterrupt):
        fs.switch_in(spark, [(f"{root}/processed/_staging/t.fresh", f"{root}/processed/t")], root)
    monkeypatch.undo()
    (journal,) = (lake / switch.JOURNAL_DIR).glob("*.json")
    assert [(e["staging"], e["target"]) for e in json.loads(journal.read_text())] == [
        ("processed/_staging/t.fresh", "processed/t")
    ]
    shutil.copytree(lake, copy)

    assert fs.recover_switches(spark, f"{mount}/copy") == [f"{mount}/copy/processed/t"]

    assert (copy / "processed" / "t" / "part-0").read_text() == "fresh"
    assert (lake / "processed" / "t" / "part-0").read_text() == "old"  # the original: as left
    assert journal.exists()


# ------------------------------------------- the Hadoop (S3) path: a step killed in a rename

FRESH = {"_SUCCESS": "", "part-0": "fresh rows 0", "part-1": "fresh rows 1 ..", "d=2/part-2": "2"}
OLD = {"_SUCCESS": "", "part-0": "old rows", "part-9": "old rows 9"}


def _write_tree(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def _files_of(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}


def _journaled_hadoop_switch(spark, tmp_path: Path, monkeypatch) -> tuple[Path, str]:
    """A lake behind a ``viewfs://`` mount with tables ``processed/t`` and ``processed/u``
    (``OLD``) and their staging folders (``FRESH``), whose ``switch_in`` died right after
    writing its journal; the lake's folder and root URI. The test then leaves the folders as a
    kill in an S3 rename would (a copy of each object, then a delete of each source)."""
    lake = tmp_path / "lake"
    for table in ("t", "u"):
        _write_tree(lake / "processed" / table, OLD)
        _write_tree(lake / "processed" / "_staging" / f"{table}.fresh", FRESH)
    root = f"{_mounted(spark, lake=lake)}/lake"

    def killed(*args):
        raise KeyboardInterrupt  # the step dies after its journal, before any folder moves

    monkeypatch.setattr(fs, "_hadoop_apply", killed)
    with pytest.raises(KeyboardInterrupt):
        fs.switch_in(
            spark,
            [(f"{root}/processed/_staging/{t}.fresh", f"{root}/processed/{t}") for t in "tu"],
            root,
        )
    monkeypatch.undo()
    assert len(list((lake / switch.JOURNAL_DIR).glob("*.json"))) == 1
    return lake, root


def _renamed_partly(lake: Path, table: str, copied: int, deleted: int) -> None:
    """``table`` moved aside to ``<staging>.old``, then the first ``copied`` files of its
    staging folder copied into it and the first ``deleted`` of them deleted from staging."""
    staging = lake / "processed" / "_staging" / f"{table}.fresh"
    (lake / "processed" / table).rename(f"{staging}.old")
    names = sorted(FRESH)
    _write_tree(lake / "processed" / table, {n: FRESH[n] for n in names[:copied]})
    for name in names[:deleted]:
        (staging / name).unlink()


def _assert_switched(lake: Path) -> None:
    for table in ("t", "u"):
        assert _files_of(lake / "processed" / table) == FRESH
    assert not list((lake / "processed" / "_staging").iterdir())
    assert not list((lake / switch.JOURNAL_DIR).glob("*.json"))


def it_records_the_files_of_each_staging_folder_in_a_hadoop_journal(spark, tmp_path, monkeypatch):
    lake, _ = _journaled_hadoop_switch(spark, tmp_path, monkeypatch)
    (journal,) = (lake / switch.JOURNAL_DIR).glob("*.json")
    files = sorted([name, len(text)] for name, text in FRESH.items())
    assert json.loads(journal.read_text()) == [
        {"staging": f"processed/_staging/{t}.fresh", "target": f"processed/{t}", "files": files}
        for t in "tu"
    ]


def it_keeps_a_table_copied_whole_when_killed_while_deleting_its_staging_folder(
    spark, tmp_path, monkeypatch
):
    """Killed after ``t`` was copied whole, while its staging objects were being deleted: the
    target is the table; today's replay moved the staging fragment over it."""
    lake, root = _journaled_hadoop_switch(spark, tmp_path, monkeypatch)
    _renamed_partly(lake, "t", copied=len(FRESH), deleted=2)

    assert fs.recover_switches(spark, root) == [f"{root}/processed/{t}" for t in "tu"]

    _assert_switched(lake)


@pytest.mark.parametrize("copied", [0, 2, len(FRESH)])
def it_moves_a_whole_staging_folder_again_when_killed_while_copying_it(
    spark, tmp_path, monkeypatch, copied
):
    """Killed while ``t``'s staging folder was copied (none, some or all of its files, none
    deleted yet): the staging folder is whole and is moved in again."""
    lake, root = _journaled_hadoop_switch(spark, tmp_path, monkeypatch)
    _renamed_partly(lake, "t", copied=copied, deleted=0)

    fs.recover_switches(spark, root)

    _assert_switched(lake)


def it_replays_a_switch_killed_while_moving_the_old_table_aside(spark, tmp_path, monkeypatch):
    lake, root = _journaled_hadoop_switch(spark, tmp_path, monkeypatch)
    staging = lake / "processed" / "_staging" / "t.fresh"
    _write_tree(Path(f"{staging}.old"), {"part-0": OLD["part-0"]})  # copied aside so far
    (lake / "processed" / "t" / "part-0").unlink()  # and deleted from the table

    fs.recover_switches(spark, root)

    _assert_switched(lake)


def it_refuses_to_replay_a_switch_whose_folders_are_both_partial(spark, tmp_path, monkeypatch):
    """Neither folder holds every recorded file (a lake copied half way, a lost object):
    refused, naming the journal, and nothing is touched, not even the sound pair ``u``."""
    lake, root = _journaled_hadoop_switch(spark, tmp_path, monkeypatch)
    # the target holds 3 of the 4 files, staging 2 of them (part-0, part-1)
    _renamed_partly(lake, "t", copied=3, deleted=2)
    (journal,) = (lake / switch.JOURNAL_DIR).glob("*.json")
    before = _tree(lake)

    with pytest.raises(switch.JournalRefused, match=r"neither .* holds all 4 files") as refused:
        fs.recover_switches(spark, root)

    assert isinstance(refused.value, InputError)
    message = str(refused.value)
    assert "\n" not in message and journal.name in message and "nothing was changed" in message
    assert _tree(lake) == before


def it_tells_a_changed_size_from_the_recorded_file(spark, tmp_path, monkeypatch):
    lake, root = _journaled_hadoop_switch(spark, tmp_path, monkeypatch)
    _renamed_partly(lake, "t", copied=len(FRESH), deleted=1)
    (lake / "processed" / "t" / "part-0").write_text("fresh rows")  # copied short
    before = _tree(lake)

    with pytest.raises(switch.JournalRefused, match="neither"):
        fs.recover_switches(spark, root)

    assert _tree(lake) == before


def it_replays_a_hadoop_journal_written_before_files_were_recorded(spark, tmp_path):
    lake = tmp_path / "lake"
    _write_tree(lake / "processed" / "t", OLD)
    _write_tree(lake / "processed" / "_staging" / "t.fresh", FRESH)
    _write_tree(lake / "processed" / "u", FRESH)  # switched before the kill: no staging left
    _journal(
        lake,
        [["processed/_staging/t.fresh", "processed/t"], ["processed/_staging/u.x", "processed/u"]],
    )
    root = f"{_mounted(spark, lake=lake)}/lake"

    assert fs.recover_switches(spark, root) == [f"{root}/processed/{t}" for t in "tu"]

    _assert_switched(lake)
