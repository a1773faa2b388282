"""Faults (issue 14, items 7 and 8): signals, the lake lock, and all-or-nothing switches.

Every wait is bounded; every process a test starts is stopped by the test (``_stop``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rental_kpis import cli
from rental_kpis.devtools.datagen import generate
from rental_kpis.errors import InputError, LakeBusy, LakeUnusable
from rental_kpis.layout import DATASETS, Lake
from rental_kpis.local import athena as querying
from rental_kpis.local import glue as catalog
from rental_kpis.local import run_records, spark_app
from rental_kpis.local.lock import LOCK_FILE, RUN_TOKEN_ENV, lake_lock, processes_with_token
from rental_kpis.local.raw_zone import check_raw, load_raw
from rental_kpis.local.run_records import run_history
from rental_kpis.local.runner import run_local
from rental_kpis.spark import switch
from rental_kpis.stages import SPARK_STAGES

ENV = {**os.environ, "COLUMNS": "200"}
QUERY = "top_spending_users"


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("raw")
    generate(folder, 2_000, seed=14, defect_rate=0.001)
    return folder


@pytest.fixture(scope="module")
def good_lake(raw, tmp_path_factory, spark) -> tuple[Path, list]:
    """A lake after one whole run (in the tests' session: the faults below hit the runs that
    follow), and the answer of a named query on it."""
    lake_dir = tmp_path_factory.mktemp("good") / "lake"
    result = run_local(raw, lake_dir, run_id="good", spark=spark)
    return lake_dir, querying.run_named_query(result.lake, QUERY).rows


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root``: (size, inode) by relative path, to prove nothing changed."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_ino)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(30)


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _record(lake_dir: Path, run_id: str) -> dict:
    try:
        return json.loads((lake_dir / "runs" / run_id / "run.json").read_text())
    except (OSError, ValueError):
        return {}


def _lock_is_free(lake_dir: Path) -> bool:
    with (lake_dir / LOCK_FILE).open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rental_kpis.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


# ---------------------------------------------------------------- item 7: signals and the lock


@pytest.mark.parametrize("step", SPARK_STAGES)
def it_stops_every_process_of_a_run_killed_with_sigterm_during_a_spark_step(
    good_lake, raw, tmp_path, step
):
    source, before = good_lake
    lake_dir = tmp_path / "lake"
    shutil.copytree(source, lake_dir)
    run = _cli("run", "--raw", str(raw), "--lake", str(lake_dir), "--run-id", "killed")
    try:
        # the step has started, and its Spark application is doing work (a JVM with our token)
        _wait(
            lambda: (
                _record(lake_dir, "killed").get("stages", {}).get(step, {}).get("status")
                == "running"
            ),
            240,
            f"{step} to start",
        )
        token = (lake_dir / LOCK_FILE).read_text().split("token ")[1].split()[0]
        _wait(lambda: len(processes_with_token(token)) >= 2, 60, "the Spark processes")
        time.sleep(1.0)
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
    finally:
        _stop(run)

    assert run.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines() == [
        f"rental-kpis: run killed during {step} interrupted by SIGTERM"
    ]
    assert processes_with_token(token) == []  # the JVM, the Python driver and its workers
    assert _lock_is_free(lake_dir)
    record = _record(lake_dir, "killed")
    assert record["status"] == "interrupted"
    assert record["stages"][step]["status"] == "interrupted"
    # the tables of the previous run are whole, registered and answer as before
    lake = Lake(str(lake_dir))
    assert querying.run_named_query(lake, QUERY).rows == before
    assert not list((lake_dir / "processed").glob("*/_temporary"))
    status = subprocess.run(
        [sys.executable, "-m", "rental_kpis.cli", "status", "--lake", str(lake_dir)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert "killed  interrupted" in status.stdout


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(30)
    return proc.pid


def it_takes_over_a_lock_whose_holder_died_and_stops_its_orphans(tmp_path):
    """A runner killed with SIGKILL: its lock file names a dead pid, and an orphan of the run
    (here a stand-in for the JVM, which inherited the lock) still holds the flock."""
    lake_dir = tmp_path / "lake"
    lake_dir.mkdir()
    lock = lake_dir / LOCK_FILE
    lock.write_text(f"run ghost (pid {_dead_pid()}, started x)\nstart 1\ntoken feedbeef\n")
    folder = lake_dir.stat()  # the file this holder wrote, in the folder it held
    identity = f"{lock.stat().st_dev}:{lock.stat().st_ino} {folder.st_dev}:{folder.st_ino}"
    lock.write_text(lock.read_text() + f"lock {identity}\n")
    orphan = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            f"f = open({str(lock)!r}, 'a+'); fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('held', flush=True); time.sleep(120)",
        ],
        env={**os.environ, RUN_TOKEN_ENV: "feedbeef"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert orphan.stdout is not None and orphan.stdout.readline() == "held\n"
        started = time.monotonic()
        with lake_lock(Lake(str(lake_dir)), "run next"):
            assert orphan.wait(10) == -signal.SIGKILL
            assert lock.read_text().startswith("run next (pid")
        assert time.monotonic() - started < 10
    finally:
        _stop(orphan)


def it_refuses_a_lock_held_by_a_live_process(tmp_path):
    lake_dir = tmp_path / "lake"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from rental_kpis.layout import Lake\n"
            "from rental_kpis.local.lock import lake_lock\n"
            f"with lake_lock(Lake({str(lake_dir)!r}), 'run alive'):\n"
            "    print('held', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        busy = pytest.raises(LakeBusy, match=f"in use by run alive \\(pid {holder.pid}")
        with busy, lake_lock(Lake(str(lake_dir)), "run other"):
            pass
        # crawl takes the lock too: refused with one line, exit 2, the catalog untouched
        crawl = subprocess.run(
            [sys.executable, "-m", "rental_kpis.cli", "crawl", "--lake", str(lake_dir)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert crawl.returncode == 2
        assert crawl.stderr.strip().splitlines() == [
            f"rental-kpis: error: lake {lake_dir} is in use by run alive (pid {holder.pid}, "
            + crawl.stderr.split(f"(pid {holder.pid}, ")[1].strip()
        ]
        assert not (lake_dir / "catalog.duckdb").exists()
        assert holder.poll() is None
    finally:
        _stop(holder)


def it_shows_a_run_whose_process_was_killed_as_interrupted(tmp_path):
    lake_dir = tmp_path / "lake"
    record = {
        "run_id": "gone",
        "status": "running",
        "started_at": "2026-01-01T00:00:00+00:00",
        "stages": {"validate_raw": {"status": "running"}},
        "pid": _dead_pid(),
        "pid_start": "1",
    }
    (lake_dir / "runs" / "gone").mkdir(parents=True)
    (lake_dir / "runs" / "gone" / "run.json").write_text(json.dumps(record))
    (history,) = run_history(Lake(str(lake_dir)))
    assert history["status"] == "interrupted"
    assert history["stages"]["validate_raw"]["status"] == "interrupted"


# ---------------------------------------------------------------- item 8: all or nothing


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


def _folders(tmp_path: Path, names: list[str], tag: str) -> list[tuple[str, str]]:
    pairs = []
    for name in names:
        staging = tmp_path / "zone" / "_staging" / f"{name}.{tag}"
        staging.mkdir(parents=True)
        (staging / "part-0.parquet").write_text(f"{name} {tag}")
        (staging / "_SUCCESS").write_text("")
        pairs.append((str(staging), str(tmp_path / "zone" / name)))
    return pairs


def _contents(tmp_path: Path, names: list[str]) -> list[str]:
    return [(tmp_path / "zone" / n / "part-0.parquet").read_text() for n in names]


SWITCH_SCRIPT = """
import json, sys
from rental_kpis.spark import switch
switch.switch([tuple(p) for p in json.loads(sys.argv[1])], sys.argv[2])
"""


@pytest.mark.parametrize("killed_after", [1, 2])
def it_finishes_a_switch_killed_between_two_renames(tmp_path, killed_after):
    names = ["curated_a", "rejected_a", "curated_b"]
    switch.switch(_folders(tmp_path, names, "old"), str(tmp_path))
    assert _contents(tmp_path, names) == ["curated_a old", "rejected_a old", "curated_b old"]
    pairs = _folders(tmp_path, names, "new")
    killed = subprocess.run(
        [sys.executable, "-c", SWITCH_SCRIPT, json.dumps(pairs), str(tmp_path)],
        env={**os.environ, switch.FAULT_ENV: str(killed_after)},
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL
    # what the kill left: some tables new, some old, and the journal
    contents = _contents(tmp_path, names)
    assert contents[:killed_after] == [f"{n} new" for n in names[:killed_after]]
    assert contents[killed_after:] == [f"{n} old" for n in names[killed_after:]]
    assert len(list((tmp_path / switch.JOURNAL_DIR).glob("*.json"))) == 1

    assert switch.recover(str(tmp_path)) == [t for _, t in pairs]
    assert _contents(tmp_path, names) == [f"{n} new" for n in names]
    assert list((tmp_path / "zone" / "_staging").iterdir()) == []
    assert list((tmp_path / switch.JOURNAL_DIR).iterdir()) == []
    assert switch.recover(str(tmp_path)) == []  # replaying nothing twice


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


def it_never_lets_a_reader_see_a_missing_table_during_switches(tmp_path):
    """A reader polling the live folder while it is replaced 300 times: never missing, never
    without _SUCCESS (the old rename-aside-then-in left 1-6 ms gaps at every swap)."""
    target = tmp_path / "zone" / "table"
    switch.switch(_folders(tmp_path, ["table"], "v0"), str(tmp_path))
    misses: list[float] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            if not (target / "_SUCCESS").exists():
                misses.append(time.monotonic())

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for version in range(1, 301):
            switch.switch(_folders(tmp_path, ["table"], f"v{version}"), str(tmp_path))
    finally:
        stop.set()
        thread.join(10)
    assert misses == []
    assert (target / "part-0.parquet").read_text() == "table v300"


def it_replaces_a_live_table_in_one_step_with_no_moment_without_it(tmp_path, monkeypatch):
    """Deterministic form of the reader test: after every rename or exchange a switch makes,
    the live table exists and is complete (a moving-aside switch fails at its first rename)."""
    names = ["curated_x", "rejected_x"]
    switch.switch(_folders(tmp_path, names, "old"), str(tmp_path))
    live = [tmp_path / "zone" / n for n in names]
    seen: list[list[bool]] = []
    real_rename, real_exchange = os.rename, switch.exchange

    def check() -> None:
        seen.append([(p / "_SUCCESS").exists() for p in live])

    def rename(a, b):
        real_rename(a, b)
        check()

    def exchange(a, b):
        done = real_exchange(a, b)
        check()
        return done

    monkeypatch.setattr(switch.os, "rename", rename)
    monkeypatch.setattr(switch, "exchange", exchange)
    switch.switch(_folders(tmp_path, names, "new"), str(tmp_path))
    monkeypatch.undo()
    assert seen and all(all(row) for row in seen), seen
    assert _contents(tmp_path, names) == ["curated_x new", "rejected_x new"]


def it_takes_over_the_lake_of_a_runner_killed_with_sigkill(good_lake, raw, tmp_path):
    """No handler runs on SIGKILL: the Spark child dies with its parent (PDEATHSIG), the next
    run recognises the dead holder, stops what is left of its processes and runs; status
    shows the killed run as interrupted, not running."""
    source, before = good_lake
    lake_dir = tmp_path / "lake"
    shutil.copytree(source, lake_dir)
    run = _cli("run", "--raw", str(raw), "--lake", str(lake_dir), "--run-id", "shot")
    try:
        _wait(
            lambda: (
                _record(lake_dir, "shot").get("stages", {}).get("validate_raw", {}).get("status")
                == "running"
            ),
            240,
            "validate_raw to start",
        )
        token = (lake_dir / LOCK_FILE).read_text().split("token ")[1].split()[0]
        _wait(lambda: len(processes_with_token(token)) >= 2, 60, "the Spark processes")
        run.kill()
        run.wait(30)
    finally:
        _stop(run)
    _wait(lambda: _lock_is_free(lake_dir), 30, "the JVM (which holds the lock) to die")
    (killed,) = [r for r in run_history(Lake(str(lake_dir))) if r["run_id"] == "shot"]
    assert killed["status"] == "interrupted"
    result = run_local(None, lake_dir, run_id="after", steps=("crawl", "queries"))
    assert processes_with_token(token) == []
    assert [s.step for s in result.steps] == ["crawl", "queries"]
    assert querying.run_named_query(result.lake, QUERY).rows == before


# ---------------------------------------------------------------- a full disk

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


def it_says_in_one_line_that_the_disk_filled_while_a_step_log_was_written(
    raw, tmp_path, monkeypatch, capsys
):
    """The application's output goes to a log on a device that is full (``/dev/full``,
    swapped in under the open log): the run stops its application and says so."""
    stopped: list[object] = []

    class Application:  # a spark-submit that prints its start and exits
        stdout = iter(["Spark starting\n"] * 100)

        def wait(self) -> int:
            return 0

    def submit(*args, workdir, **kwargs):
        log = workdir / "validate_raw.log"
        for fd in map(int, os.listdir("/proc/self/fd")):
            with contextlib.suppress(OSError):
                if Path(os.readlink(f"/proc/self/fd/{fd}")) == log:
                    full = os.open("/dev/full", os.O_WRONLY)
                    os.dup2(full, fd)
                    os.close(full)
        return Application()

    monkeypatch.setattr(spark_app, "start_spark_submit", submit)
    monkeypatch.setattr(spark_app, "stop_spark_submit", stopped.append)
    lake_dir = tmp_path / "lake"
    code = cli.main(["run", "--raw", str(raw), "--lake", str(lake_dir), "--run-id", "full"])
    assert code == 2
    log = lake_dir / "runs" / "full" / "validate_raw.log"
    assert f"step validate_raw: cannot write its log {log}: {FULL}" in _one_line_of(capsys)
    assert len(stopped) == 1
    (record,) = run_history(Lake(str(lake_dir)))
    assert record["status"] == "failed" and FULL in record["error"]


def it_keeps_the_previous_run_record_whole_when_the_disk_is_full(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    record = {"run_id": "r1", "status": "running", "started_at": "2026-01-01T00:00:00+00:00"}
    run_records.write_run_record(lake, {**record, "stages": {}})
    path = Path(lake.uri("runs", "r1", "run.json"))
    before = path.read_bytes()
    temporary = path.with_name(f".run.json.{os.getpid()}.tmp")
    temporary.symlink_to("/dev/full")  # where the next write goes first
    with pytest.raises(LakeUnusable, match=f"run r1 \\(failed\\): cannot write its record {path}"):
        run_records.write_run_record(lake, {**record, "status": "failed", "stages": {}})
    assert path.read_bytes() == before  # not cut short: the record before the write
    assert not temporary.exists() and not temporary.is_symlink()
