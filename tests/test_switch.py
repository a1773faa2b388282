"""Folders switched in together (``spark/switch``): a switch killed between two renames is
finished, and a reader never meets a moment without the table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rental_kpis.spark import switch


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
