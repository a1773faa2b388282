"""Errors a user can meet on a local lake: one line, exit 2, no traceback.

Unusable lakes are made for real: a lake path that is a file, a lake under a file, a
read-only lake, a corrupt catalog, an S3 URI given to the local backend. The tests run as root
in CI, and root ignores permission bits; a read-only lake is therefore tested in a child that
runs as root *without* the capabilities that bypass them (``setpriv --bounding-set
-dac_override,-dac_read_search,-fowner``): the kernel then checks the mode bits as for any user,
the child still reads the project and its virtualenv, and no other account or mount is needed.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import duckdb
import pytest
from cli_runner import assert_one_line_error, run_cli
from test_catalog_and_queries import write_world_tables

from rental_kpis import cli
from rental_kpis.devtools.datagen import generate
from rental_kpis.errors import LakeUnusable
from rental_kpis.layout import DATASETS, Lake
from rental_kpis.local import glue as catalog
from rental_kpis.local.raw_zone import check_raw, load_raw
from rental_kpis.local.step_logs import failure_detail

# Drop only what lets root ignore permission bits; everything else stays as it is.
WITHOUT_ROOT_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def run_cli_as_a_user(*args: str) -> object:
    """``rental-kpis ARGS`` in a child to which permission bits apply, whoever runs the tests."""
    if os.geteuid() != 0:
        return run_cli(*args)
    import subprocess
    import sys

    return subprocess.run(
        [*WITHOUT_ROOT_OVERRIDE, sys.executable, "-m", "rental_kpis.cli", *args],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def crawled(spark, tmp_path_factory) -> Lake:
    lake = Lake(str(tmp_path_factory.mktemp("crawled") / "lake"))
    write_world_tables(spark, lake)
    catalog.crawl(lake)
    return lake


def copy_of(lake: Lake, where: Path) -> Lake:
    shutil.copytree(lake.root, where)
    return Lake(str(where))


def read_only(folder: Path) -> None:
    """Take away every write permission below ``folder`` (as ``chmod -R a-w``)."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(stat.S_IMODE(path.stat().st_mode) & ~0o222)


def writable(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(stat.S_IMODE(path.stat().st_mode) | 0o200)


def it_proves_the_child_really_meets_permission_bits(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    read_only(folder)
    try:
        done = run_cli_as_a_user("generate", "--out", str(folder / "x"), "--transactions", "10")
        assert done.returncode != 0
        assert "Permission denied" in done.stderr
    finally:
        writable(folder)


@pytest.mark.parametrize("command", ["crawl", "run"])
def it_says_in_one_line_that_a_read_only_lake_cannot_be_written(crawled, tmp_path, command):
    # `query` answers from a read-only lake: tests/test_local_query.py
    lake = copy_of(crawled, tmp_path / "lake")
    if command == "crawl":
        Path(catalog.catalog_path(lake)).unlink()
    read_only(Path(lake.root))
    argv = {
        "crawl": ["crawl", "--lake", lake.root],
        "run": ["run", "--raw", str(tmp_path), "--lake", lake.root],
    }[command]
    try:
        done = run_cli_as_a_user(*argv)
    finally:
        writable(Path(lake.root))
    assert_one_line_error(done, "Permission denied", lake.root)


@pytest.mark.parametrize("command", ["crawl", "run", "query", "status"])
def it_says_in_one_line_that_a_file_is_not_a_lake(tmp_path, command):
    file = tmp_path / "notes.txt"
    file.write_text("not a lake")
    for lake in (file, file / "lake"):
        argv = {
            "crawl": ["crawl", "--lake", str(lake)],
            "run": ["run", "--raw", str(tmp_path), "--lake", str(lake)],
            "query": ["query", "monthly_revenue", "--lake", str(lake)],
            "status": ["status", "--lake", str(lake)],
        }[command]
        done = run_cli(*argv)
        assert_one_line_error(done, f"{file} is a file, not a folder")


@pytest.mark.parametrize("command", ["crawl", "query"])
def it_says_in_one_line_that_the_catalog_is_corrupt(crawled, tmp_path, command):
    lake = copy_of(crawled, tmp_path / "lake")
    path = catalog.catalog_path(lake)
    path.write_bytes(b"this is not a DuckDB file" * 200)
    argv = ["crawl", "--lake", lake.root] if command == "crawl" else ["query", "monthly_revenue"]
    done = run_cli(*argv, *(["--lake", lake.root] if command == "query" else []))
    assert_one_line_error(done, f"catalog {path} cannot be opened", "delete it")


@pytest.mark.parametrize("command", ["run", "crawl", "query", "status", "report"])
def it_says_in_one_line_that_the_local_backend_needs_a_folder_not_s3(tmp_path, command):
    argv = {
        "run": ["run", "--lake", "s3://b"],
        "crawl": ["crawl", "--lake", "s3://b"],
        "query": ["query", "monthly_revenue", "--lake", "s3://b"],
        "status": ["status", "--lake", "s3://b"],
        "report": ["report", "--lake", "s3://b"],
    }[command]
    done = run_cli(*argv, cwd=tmp_path)
    assert_one_line_error(done, "s3://b", "folder")
    assert list(tmp_path.iterdir()) == []  # no folder named s3:


def it_keeps_the_traceback_of_a_genuine_bug(crawled, tmp_path, monkeypatch):
    def broken(*_args, **_kwargs):
        raise TypeError("a bug, not a user error")

    monkeypatch.setattr(catalog, "inspect_table", broken)
    lake = copy_of(crawled, tmp_path / "lake")
    Path(catalog.catalog_path(lake)).unlink()
    with pytest.raises(TypeError, match="a bug"):
        cli.main(["crawl", "--lake", lake.root])


def it_says_in_one_line_that_another_process_holds_the_catalog(crawled, tmp_path):
    lake = copy_of(crawled, tmp_path / "lake")
    with duckdb.connect(str(catalog.catalog_path(lake))):  # a writer elsewhere holds the lock
        done = run_cli("query", "monthly_revenue", "--lake", lake.root)
    assert_one_line_error(done, f"catalog {catalog.catalog_path(lake)} cannot be opened", "lock")


def it_skips_a_finished_table_folder_without_parquet(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    folder = Path(lake.processed("daily_metrics"))
    folder.mkdir(parents=True)
    (folder / "_SUCCESS").touch()
    report = catalog.crawl(lake)
    assert report.skipped == {"daily_metrics": catalog.NO_PARQUET}
    assert catalog.get_tables(lake) == []


@pytest.mark.parametrize("folder", ["b[ab]c", "st*r", "{a,b}", "q?"])
def it_refuses_a_lake_path_that_spark_would_read_as_a_glob(tmp_path, folder):
    # Spark expands these in every path it reads: the steps would read the sibling bac/.
    lake = tmp_path / folder / "lake"
    done = run_cli("run", "--raw", str(tmp_path), "--lake", str(lake))
    assert_one_line_error(done, str(lake), "Spark reads as a pattern")
    assert not (tmp_path / folder).exists()


def it_says_in_one_line_that_generate_cannot_write_its_folder(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = run_cli("generate", "--out", str(blocker / "raw"), "--transactions", "10")
    assert_one_line_error(done, "cannot write", str(blocker / "raw"))


def it_keeps_the_traceback_of_a_key_error_bug_in_a_command(monkeypatch):
    """A KeyError is a bug (a missing dict key), never turned into a user error."""

    def broken(*_args, **_kwargs):
        raise KeyError("a bug, not an unknown name")

    monkeypatch.setattr("rental_kpis.queries.names", broken)
    with pytest.raises(KeyError, match="a bug"):
        cli.main(["query", "--list"])


@pytest.mark.parametrize("command", ["run", "crawl", "query", "status", "report"])
@pytest.mark.parametrize(
    ("lake", "why"),
    [
        ("", "names no folder"),
        ("/", "root of the filesystem"),
        ("//", "root of the filesystem"),
        ("file:///", "root of the filesystem"),  # used to become a folder named file:
        ("file://localhost/", "root of the filesystem"),
    ],
)
def it_refuses_a_lake_that_is_empty_or_the_filesystem_root(tmp_path, command, lake, why):
    """These used to mean the current folder, which then became the lake."""
    argv = {
        "run": ["run", "--raw", str(tmp_path / "raw"), "--lake", lake],
        "crawl": ["crawl", "--lake", lake],
        "query": ["query", "monthly_revenue", "--lake", lake],
        "status": ["status", "--lake", lake],
        "report": ["report", "--lake", lake, "--out", str(tmp_path / "out")],
    }[command]
    done = run_cli(*argv, cwd=tmp_path)
    assert_one_line_error(done, f"lake {lake!r}" if not lake else f"lake {lake}:", why)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["users", "users/lake", "rental_transactions/x/lake"])
def it_refuses_a_lake_inside_a_dataset_folder_of_the_raw_input(tmp_path, where):
    """Made there, the lake would be an entry of the dataset: every later run would fail."""
    raw = tmp_path / "raw"
    generate(raw, 100, seed=1)
    before = sorted(raw.rglob("*"))
    lake = raw / where
    dataset = raw / where.split("/")[0]
    for argv in (
        ["run", "--raw", str(raw), "--lake", str(lake)],
        ["report", "--raw", str(raw), "--lake", str(lake), "--out", str(tmp_path / "out")],
    ):
        done = run_cli(*argv, cwd=tmp_path)
        assert_one_line_error(done, f"lies in {dataset}, a dataset folder", "outside it")
    with pytest.raises(LakeUnusable, match="a dataset folder of the raw input"):
        load_raw(raw, Lake(str(lake)))
    assert sorted(raw.rglob("*")) == before
    assert sorted(check_raw(raw)) == sorted(DATASETS)  # the raw folder is still good input


def it_reads_a_file_uri_lake_as_the_folder_it_names(tmp_path):
    """file:/x is how Hadoop prints a local path; it used to become ./file:/x."""
    lake = tmp_path / "lake"
    for uri in (f"file:{lake}", f"file://{lake}", f"file://localhost{lake}/", f"FILE:{lake}"):
        assert Lake(uri).root == str(lake)
        done = run_cli("crawl", "--lake", uri, cwd=tmp_path)
        assert_one_line_error(done, f"no lake at {lake}:")
        assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("file://elsewhere/x", "a file URI of the host elsewhere"),
        ("file:x", "without an absolute path"),
        ("file:", "names no folder"),
    ],
)
def it_refuses_a_file_uri_that_names_no_folder_of_this_machine(tmp_path, uri, why):
    done = run_cli("crawl", "--lake", uri, cwd=tmp_path)
    assert_one_line_error(done, uri, why)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("lake_is", ["its parent", "the raw folder", "a link to its parent"])
def it_refuses_a_lake_that_holds_the_raw_input(tmp_path, lake_is):
    """`make run LAKE=data` with RAW=data/raw made the user's data the lake's: `make clean`
    then deleted it."""
    data = tmp_path / "data"
    raw = data / "raw"
    generate(raw, 100, seed=1)
    (tmp_path / "link").symlink_to(data)
    lake = {"its parent": "data", "the raw folder": "data/raw", "a link to its parent": "link"}[
        lake_is
    ]
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    for argv in (
        ["run", "--raw", "data/raw", "--lake", lake],
        ["run", "--raw", str(raw), "--lake", f"file:{tmp_path / lake}"],
        ["report", "--raw", "data/raw", "--lake", lake, "--out", str(tmp_path / "out")],
    ):
        done = run_cli(*argv, cwd=tmp_path)
        assert_one_line_error(done, "holds the raw input", "outside it")
    with pytest.raises(LakeUnusable, match="holds the raw input"):
        load_raw(raw, Lake(str(tmp_path / lake)))
    assert {p: p.read_bytes() for p in data.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "link"]


def it_refuses_a_negative_seed_in_one_line(tmp_path):
    done = run_cli("generate", "--out", str(tmp_path / "raw"), "--seed", "-1")
    assert_one_line_error(done, "--seed must be 0 or more, not -1")
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize("last", ["0", "-3"])
def it_refuses_a_status_of_no_runs_in_one_line(tmp_path, last):
    done = run_cli("status", "--lake", str(tmp_path / "lake"), "--last", last)
    assert_one_line_error(done, f"--last must be 1 or more, not {last}")


GOOD_RECORD = {
    "run_id": "good",
    "status": "succeeded",
    "started_at": "2026-01-01T00:00:00+00:00",
    "stages": {"crawl": {"status": "succeeded", "seconds": 0.1}},
}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[]", "a JSON list, not an object"),
        ('{"run_id": "bad", "status": "succ', "not JSON"),  # a write cut short
        ("", "not JSON"),
        (json.dumps({**GOOD_RECORD, "run_id": "bad", "started_at": None}), "started_at is null"),
        (json.dumps({**GOOD_RECORD, "run_id": "bad", "started_at": "yesterday"}), "not a time"),
        (json.dumps({**GOOD_RECORD, "run_id": "bad", "stages": []}), "stages is []"),
    ],
)
def it_names_a_damaged_run_record_in_one_line_instead_of_skipping_it(tmp_path, text, why):
    runs = tmp_path / "lake" / "runs"
    for run_id, body in (("good", json.dumps(GOOD_RECORD)), ("bad", text)):
        (runs / run_id).mkdir(parents=True)
        (runs / run_id / "run.json").write_text(body)
    done = run_cli("status", "--lake", str(tmp_path / "lake"))
    assert_one_line_error(done, f"run record {runs / 'bad' / 'run.json'} is damaged", why)


def it_refuses_a_master_that_is_not_a_spark_url_before_anything_starts(tmp_path):
    raw = tmp_path / "raw"
    generate(raw, 10, seed=1)
    lake = tmp_path / "lake"
    done = run_cli("run", "--raw", str(raw), "--lake", str(lake), "--master", "garbage://x")
    assert_one_line_error(done, "--master 'garbage://x' is not a Spark master URL", "local[*]")
    assert not lake.exists()


# What spark-submit printed for ``--master garbage://x`` before the master was checked first:
# the step's line used to be the last stack frame.
SUBMIT_REFUSED = """\
Exception in thread "main" org.apache.spark.SparkException: Master must either be yarn or start with spark, mesos, k8s, or local
\tat org.apache.spark.deploy.SparkSubmit.error(SparkSubmit.scala:1052)
\tat org.apache.spark.deploy.SparkSubmit.prepareSubmitEnvironment(SparkSubmit.scala:261)
\tat org.apache.spark.deploy.SparkSubmit.main(SparkSubmit.scala)
"""  # noqa: E501


def it_says_why_spark_submit_refused_not_where_in_its_stack():
    assert failure_detail(SUBMIT_REFUSED) == (
        "org.apache.spark.SparkException: Master must either be yarn or start with spark, "
        "mesos, k8s, or local"
    )
