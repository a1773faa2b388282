"""The generator: deterministic, SPEC §1's shape, and defects it can count."""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

import pytest
from cli_runner import assert_one_line_error, run_cli

from rental_kpis.devtools import datagen
from rental_kpis.devtools.datagen import PRICE_PER_HOUR, generate
from rental_kpis.errors import UsageError
from rental_kpis.layout import DATASETS


def digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.csv"))
    }


def rows(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    generate(out, 3_000, seed=5)
    return out


def it_writes_the_same_bytes_for_the_same_seed(tmp_path, clean):
    generate(tmp_path, 3_000, seed=5)
    assert digest(tmp_path) == digest(clean)
    generate(tmp_path, 3_000, seed=6)
    assert digest(tmp_path) != digest(clean)


def it_prices_whole_hours_by_vehicle_type(clean):
    types = {v["vehicle_id"]: v["vehicle_type"] for v in rows(clean / "vehicles" / "vehicles.csv")}
    assert sorted(set(types.values())) == sorted(PRICE_PER_HOUR)
    from datetime import datetime

    hours_seen = set()
    for r in rows(clean / "rental_transactions" / "rental_transactions.csv"):
        start = datetime.fromisoformat(r["rental_start_time"])
        end = datetime.fromisoformat(r["rental_end_time"])
        hours = (end - start).total_seconds() / 3600
        assert hours == int(hours) and 1 <= hours <= 72
        assert float(r["total_amount"]) == PRICE_PER_HOUR[types[r["vehicle_id"]]] * hours
        assert r["pickup_location"] != r["dropoff_location"]
        assert datetime(2024, 1, 1) <= start < datetime(2024, 6, 1)
        hours_seen.add(hours)
    assert {1, 72} <= hours_seen


def it_has_the_realistic_dimension_shape(clean):
    locations = rows(clean / "locations" / "locations.csv")
    assert len(locations) == 300
    assert len({loc["city"] for loc in locations}) == 50
    assert any("," in loc["location_name"] for loc in locations)
    users = rows(clean / "users" / "users.csv")
    assert all(u["user_id"].startswith("0") and len(u["user_id"]) == 10 for u in users)
    counts = {}
    for v in rows(clean / "vehicles" / "vehicles.csv"):
        counts[v["vehicle_type"]] = counts.get(v["vehicle_type"], 0) + 1
    assert max(counts.values()) / min(counts.values()) < 1.3  # roughly even split


def it_records_every_injected_defect_in_the_manifest(tmp_path):
    manifest = generate(tmp_path, 5_000, seed=1, defect_rate=0.001)
    tx = manifest["datasets"]["rental_transactions"]
    assert all(n >= 5 for n in tx["rejected_by_reason"].values())
    for name in DATASETS:
        counts = manifest["datasets"][name]
        assert counts["input_rows"] == (
            counts["valid_rows"] + counts["rejected_rows"] + counts["deduplicated_rows"]
        )
        assert counts["rejected_rows"] == sum(counts["rejected_by_reason"].values())
        lines = (tmp_path / manifest["files"][name]).read_text().count("\n") - 1
        assert lines == counts["input_rows"]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--transactions", "-5"], ["transactions must be 0 or more, not -5"]),
        (["--transactions", "100", "--defect-rate", "2"], ["between 0 and 1, not 2.0"]),
        (
            ["--transactions", "100", "--defect-rate", "0.02"],
            ["needs 720 clean locations rows", "make 300; lower the rate"],
        ),
        (
            ["--transactions", "10", "--defect-rate", "0.1"],
            ["clean rental_transactions rows", "10 transactions make 10; generate more"],
        ),
    ],
)
def it_refuses_what_it_cannot_generate_in_one_line_and_writes_nothing(tmp_path, args, fragments):
    out = tmp_path / "raw"
    done = run_cli("generate", "--out", str(out), *args)
    assert_one_line_error(done, *fragments)
    assert not out.exists()


@pytest.mark.parametrize(
    "theirs", ["users/users.csv", "users/export.csv", "users/old.csv.gz", "users/OLD.CSV", "notes"]
)
def it_refuses_an_out_folder_holding_files_it_did_not_write(tmp_path, theirs):
    """A user's raw folder: nothing deleted, nothing generated beside their files."""
    out = tmp_path / "raw"
    path = out / theirs
    path.parent.mkdir(parents=True)
    path.write_text("the user's own rows\n")

    done = run_cli("generate", "--out", str(out), "--transactions", "100")

    assert_one_line_error(done, f"--out {out} holds files the generator did not write", theirs)
    assert [p for p in out.rglob("*") if p.is_file()] == [path]
    assert path.read_text() == "the user's own rows\n"


def it_regenerates_a_folder_it_wrote_only_while_it_holds_nothing_else(tmp_path):
    generate(tmp_path, 100, seed=1)
    generate(tmp_path, 100, seed=2)  # its own files: replaced
    first = digest(tmp_path)
    added = tmp_path / "users" / "more_users.csv"
    added.write_text("user_id\n1\n")

    with pytest.raises(UsageError, match=r"more_users\.csv"):
        generate(tmp_path, 100, seed=3)

    assert added.read_text() == "user_id\n1\n"
    assert {k: v for k, v in digest(tmp_path).items() if k != added.name} == first


def _their_files(tmp_path: Path) -> Path:
    """A user's folder outside the generated one, with a users.csv of their own."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "users.csv").write_text("the user's own rows\n")
    return theirs


@pytest.mark.parametrize("link", ["users", "users/users.csv", "generation_manifest.json"])
def it_refuses_a_link_in_a_folder_it_wrote(tmp_path, link):
    """A link in place of a folder or file generate wrote: rerun, it wrote through it."""
    out = tmp_path / "raw"
    generate(out, 100, seed=1)
    theirs = _their_files(tmp_path)
    path = out / link
    if path.is_dir():
        for child in path.iterdir():
            child.unlink()
        path.rmdir()
        path.symlink_to(theirs)
    else:
        path.unlink()
        path.symlink_to(theirs / "users.csv")

    done = run_cli("generate", "--out", str(out), "--transactions", "100")

    assert_one_line_error(done, f"--out {out} holds a symbolic link, {path}")
    assert (theirs / "users.csv").read_text() == "the user's own rows\n"
    assert sorted(p.name for p in theirs.iterdir()) == ["users.csv"]


@pytest.mark.parametrize("link", ["folder", "file", "hard"])
def it_writes_no_file_through_a_link(tmp_path, monkeypatch, link):
    """Should a link appear after the check (or a hard link, which is no symbolic one)."""
    out = tmp_path / "raw"
    generate(out, 100, seed=1)
    theirs = _their_files(tmp_path)
    users = out / "users"
    if link == "folder":
        (users / "users.csv").unlink()
        users.rmdir()
        users.symlink_to(theirs)
    elif link == "file":
        (users / "users.csv").unlink()
        (users / "users.csv").symlink_to(theirs / "users.csv")
    else:
        (users / "users.csv").unlink()
        os.link(theirs / "users.csv", users / "users.csv")
    monkeypatch.setattr(datagen._generate, "check_out", lambda _out: None)

    with pytest.raises(UsageError, match="is a link, or not a file of the generator's own"):
        generate(out, 100, seed=2)

    assert (theirs / "users.csv").read_text() == "the user's own rows\n"
    assert sorted(p.name for p in theirs.iterdir()) == ["users.csv"]


def it_may_write_into_an_out_folder_that_is_a_link(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "real")
    generate(tmp_path / "out", 100, seed=1)
    generate(tmp_path / "out", 100, seed=2)  # its own files, reached through the user's link
    assert (tmp_path / "real" / "users" / "users.csv").is_file()
