"""The validation step's faster paths give exactly what the plain ones give (issue 15).

- ``read_raw(text="utf-8")`` (the CSV reader decodes) against ``text="bytes"`` (every byte
  checked here): the same rows when no record is suspect, and every record that could hide an
  invalid byte marked as suspect, so that the step reads that dataset again byte by byte.
- ``collapse_duplicates`` with the shared keys counted first against one shuffle of every row.
- ``validate_raw`` on a lake with the shared keys counted first for every dataset and one
  dataset read twice: the generator's accounting, exactly.
- a large dataset's curated and rejected rows split from one stored computation against two
  computations: the same tables.
- no local checkpoint's blocks left behind by the step, whether it succeeds, a dimension fails
  or a checkpoint's own job fails; a failure to free them never hides the step's error.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import raw_frame
from pyspark.sql import functions as F
from sample_rows import location, rental, user, vehicle

from rental_kpis.devtools.datagen import MANIFEST, generate
from rental_kpis.layout import DATASETS, Lake
from rental_kpis.spark import steps
from rental_kpis.spark.readers import BYTES, SUSPECT, UTF8, read_raw
from rental_kpis.spark.schemas import REJECTION_REASON
from rental_kpis.spark.validation import (
    COPIES,
    CORRUPT_RECORD,
    KEY_HASH,
    RAW_LINE,
    flag_all,
    flag_dimension,
    key_hash,
    parsed_key,
    shared_keys,
)

TX = "rental_transactions"
LATIN_1 = ("users", TX)  # the datasets of ``small_raw`` holding a Latin-1 record
HEADER = (
    b"rental_id,user_id,vehicle_id,rental_start_time,rental_end_time,"
    b"pickup_location,dropoff_location,total_amount\n"
)


def _rows(df) -> list[tuple]:
    return sorted((tuple(r) for r in df.collect()), key=repr)


def _persistent_rdds(spark) -> set[int]:
    """The ids of the RDDs whose blocks the application keeps (checkpoints, caches)."""
    return {int(i) for i in spark.sparkContext._jsc.getPersistentRDDs().keySet().toArray()}


LARGE = {steps.SHARED_KEYS_FROM_BYTES_CONF: "0"}  # every dataset takes the large-input path


@contextmanager
def _settings(spark, settings: dict[str, str]) -> Iterator[None]:
    """Spark settings for the block, each restored after it (unset where it was unset)."""
    saved = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def _write(folder: Path, body: bytes) -> str:
    folder.mkdir(parents=True)
    (folder / "part.csv").write_bytes(HEADER + body)
    return str(folder)


def it_reads_utf8_records_like_the_byte_reader_when_none_is_suspect(spark, tmp_path):
    body = (
        "R1,U1,V1,2024-03-01 10:00:00,2024-03-01 12:00:00,1,2,20\n"
        'R2,"Jos\xc3\xa9, \xe5\x8c\x97",V1,2024-03-01 10:00:00,2024-03-01 12:00:00,1,2,20\n'
        '"R3\nspans",U1,V1,2024-03-01 10:00:00,2024-03-01 12:00:00,1,2,"1""0"\n'
        "R4,U1,V1,short\n"
        "R5,U\x00,V1,2024-03-01 10:00:00,2024-03-01 12:00:00,1,2,20\n"
    ).encode("latin-1")
    uri = _write(tmp_path / TX, body)
    fast = read_raw(spark, TX, uri, text=UTF8)
    assert fast.where(F.col(SUSPECT)).count() == 0
    assert _rows(fast.drop(SUSPECT)) == _rows(read_raw(spark, TX, uri, text=BYTES))
    corrupt = {r["rental_id"]: r[CORRUPT_RECORD] for r in fast.collect()}
    assert corrupt["R4"] == "R4,U1,V1,short"
    assert corrupt["R5"] is not None and "\x00" in corrupt["R5"]  # a NUL byte: malformed


def it_marks_every_record_holding_u_fffd_as_suspect(spark, tmp_path):
    body = (
        b"R1,U1,V1,2024-03-01 10:00:00,2024-03-01 12:00:00,1,2,20\n"
        b"R2,Jos\xe9,V1,2024-03-01 10:00:00,2024-03-01 12:00:00,1,2,20\n"  # Latin-1, not UTF-8
        b"R3,U\xef\xbf\xbd,V1,2024-03-01 10:00:00,2024-03-01 12:00:00,1,2,20\n"  # a real U+FFFD
        b"R4,U1,\xff\n"  # too short, and an invalid byte
    )
    uri = _write(tmp_path / TX, body)
    suspect = {r["rental_id"]: r[SUSPECT] for r in read_raw(spark, TX, uri, text=UTF8).collect()}
    assert suspect == {"R1": False, "R2": True, "R3": True, "R4": True}
    exact = {r["rental_id"]: r[CORRUPT_RECORD] for r in read_raw(spark, TX, uri).collect()}
    assert exact["R2"] is not None and exact["R3"] is None  # only the byte reading can tell


def it_rejects_an_unknown_read_mode(spark, tmp_path):
    uri = _write(tmp_path / TX, b"")
    with pytest.raises(ValueError, match="text must be"):
        read_raw(spark, TX, uri, text="latin-1")


def _tricky_world(spark) -> dict:
    good = rental("R1")
    rentals = [
        good,
        good,  # an exact duplicate
        rental("R2"),
        rental("R2", amount="30"),  # a conflicting rental_id
        rental("R3"),
        rental("R3"),
        rental("R3", amount="30"),  # duplicate and conflict under one key
        rental(None),
        rental(None),  # duplicated rows without a key
        {**rental("R4"), CORRUPT_RECORD: "R4,U1"},
        {**rental("R4"), CORRUPT_RECORD: "R4,U1"},  # a duplicated malformed row
        rental("R4"),  # and a valid row sharing its key: not a conflict
        {**rental("R5"), CORRUPT_RECORD: "R5,U1"},  # a malformed row alone with its key
        rental("R6", user_id="U9"),
        rental(" R7 "),
    ]
    dimensions = {
        "locations": [location("1"), location("2"), location("3"), location("03")],
        "vehicles": [vehicle("V1"), vehicle("V1"), vehicle("V2")],
        "users": [user("U1"), user("U2"), user("U2", "Bo", "Kim"), user(None)],
    }
    data = {**dimensions, TX: rentals}
    return {name: raw_frame(spark, name, rows) for name, rows in data.items()}


def it_collapses_the_same_with_the_shared_keys_counted_first(spark):
    raw = _tricky_world(spark)
    shared = {name: shared_keys(df, name) for name, df in raw.items()}
    plain, first = flag_all(raw, persist=True), flag_all(raw, persist=True, shared=shared)
    hashes = spark.createDataFrame([(k,) for k in ("R1", "R2", "R3", "R4")], "key string")
    wanted = hashes.select(key_hash(F.col("key")).alias(KEY_HASH))
    assert sorted(shared[TX].collect()) == sorted(wanted.collect())
    for name in ("users", TX):
        assert plain[name].columns == first[name].columns
        assert _rows(first[name]) == _rows(plain[name]), name
    reasons = dict(first[TX].groupBy(REJECTION_REASON).count().collect())
    assert reasons["conflicting_rental_id"] == 4  # two distinct rows of R2, two of R3


def it_collapses_the_same_when_keys_held_once_share_a_hash_with_others(spark):
    """A hash collision puts a key held by one row among the shared ones: its row then goes
    through the exact aggregate, which gives it the same one copy. Every key marked shared
    (the worst case of collisions) must give the plain result."""
    raw = _tricky_world(spark)
    every = {
        name: df.select(key_hash(parsed_key(name)).alias(KEY_HASH)).distinct()
        for name, df in raw.items()
    }
    plain, marked = flag_all(raw, persist=True), flag_all(raw, persist=True, shared=every)
    for name in DATASETS:
        assert _rows(marked[name]) == _rows(plain[name]), name


@pytest.fixture(scope="module")
def small_raw(tmp_path_factory) -> Path:
    """Generated data with every defect, plus one Latin-1 record in users and one in the
    rentals (a dimension, and the dataset read before the dimensions are stored)."""
    raw = tmp_path_factory.mktemp("paths") / "raw"
    generate(raw, transactions=2_000, seed=7, defect_rate=0.005)
    for dataset in LATIN_1:
        path = raw / dataset / f"{dataset}.csv"
        lines = path.read_bytes().splitlines(keepends=True)
        lines.insert(5, lines[5].replace(b",", b"\xe9,", 1))  # bytes that are not UTF-8
        path.write_bytes(b"".join(lines))
    return raw


def it_validates_a_lake_exactly_with_shared_keys_first_and_a_second_byte_read(
    spark, small_raw, tmp_path
):
    """Every dataset takes the large-input path (threshold 0); users and the rentals, each
    holding a Latin-1 record, are read twice; the rentals' first reading is made beside
    the dimensions. The accounting is the generator's, plus those records."""
    shutil.copytree(small_raw, tmp_path / "raw")
    lake = Lake(str(tmp_path))
    with _settings(spark, LARGE):
        counts = steps.validate_raw(spark, lake)["datasets"]
    expected = json.loads((small_raw / MANIFEST).read_text())["datasets"]
    for dataset in LATIN_1:
        expected[dataset]["input_rows"] += 1
        expected[dataset]["rejected_rows"] += 1
        expected[dataset]["rejected_by_reason"]["malformed_row"] += 1
    assert counts == expected
    for dataset in LATIN_1:
        rejected = spark.read.parquet(lake.rejected(dataset))
        # the Latin-1 record, found by the byte-by-byte reading
        assert rejected.where(F.col(RAW_LINE).contains("\ufffd")).count() == 1, dataset
        curated = spark.read.parquet(lake.curated(dataset)).count()
        assert curated == expected[dataset]["valid_rows"], dataset


def it_reads_a_large_datasets_records_once_for_keys_held_once_and_shared_keys(spark, small_raw):
    """With the shared keys counted first, the rows of keys held once and those of shared
    keys come from one shuffle of the raw records, which Spark reuses for the second
    branch instead of reading the CSV again (``collapse_duplicates``, ``_stored_keys``)."""
    lake = Lake(str(small_raw.parent))
    with _settings(spark, LARGE):
        reading = steps.read_dataset(spark, lake, "vehicles", UTF8)
    flagged = flag_dimension(reading.raw, "vehicles", reading.shared)
    try:
        rows = flagged.collect()
    finally:
        reading.release()
    final_plan = flagged._jdf.queryExecution().executedPlan().toString()
    final_plan = final_plan.split("== Initial Plan ==")[0]
    assert final_plan.count("FileScan csv") == 1
    assert final_plan.count("ReusedExchange") == 1
    expected = json.loads((small_raw / MANIFEST).read_text())["datasets"]["vehicles"]
    assert sum(row[COPIES] for row in rows) == expected["input_rows"]
    assert sum(row[REJECTION_REASON] is None for row in rows) == expected["valid_rows"]


def it_splits_curated_and_rejected_from_one_stored_computation_as_two_passes_would(
    spark, small_raw, tmp_path
):
    """A large dataset's flagged frame is stored in a Parquet work folder and split from it,
    a small one's in a local checkpoint (``steps.stored_flagged``). Both give the same
    tables, row for row (raw strings and raw lines of rejected rows included), and neither
    a work folder nor a checkpoint's blocks (flagged rows, shared keys) are left behind, not
    even those of users' first reading, which is dropped for suspects. The large path runs
    with the run's adaptive execution and shuffle partitions (the tests' session has
    neither), whose re-planning must not read a freed checkpoint."""
    lakes = {}
    run_conf = {"spark.sql.adaptive.enabled": "true", "spark.sql.shuffle.partitions": "8"}
    for name, conf in (("twice", {}), ("once", {**LARGE, **run_conf})):
        shutil.copytree(small_raw, tmp_path / name / "raw")
        lakes[name] = Lake(str(tmp_path / name))
        before = _persistent_rdds(spark)
        with _settings(spark, conf):
            steps.validate_raw(spark, lakes[name])
        assert _persistent_rdds(spark) - before == set(), name
    for dataset in DATASETS:
        for zone in (Lake.curated, Lake.rejected):
            twice, once = (spark.read.parquet(zone(lakes[n], dataset)) for n in lakes)
            assert once.schema == twice.schema, (dataset, zone.__name__)
            assert _rows(once) == _rows(twice), (dataset, zone.__name__)
    assert _rows(spark.read.parquet(lakes["once"].rejected(TX)).where(F.col(RAW_LINE).isNotNull()))
    assert not [p for p in (tmp_path / "once").rglob("*") if ".flagged." in p.name]


def it_frees_every_checkpoint_when_a_dimension_fails(spark, small_raw, tmp_path, monkeypatch):
    """A dimension failing while the others are stored and the rentals' shared keys counted
    beside them: the step raises that error and keeps no checkpoint's blocks."""
    shutil.copytree(small_raw, tmp_path / "raw")
    flag = steps.flag_dimension

    def failing(raw, dataset, shared):
        if dataset == "locations":
            raise RuntimeError("locations broke")
        return flag(raw, dataset, shared)

    monkeypatch.setattr(steps, "flag_dimension", failing)
    before = _persistent_rdds(spark)
    with _settings(spark, LARGE), pytest.raises(RuntimeError, match="locations broke"):
        steps.validate_raw(spark, Lake(str(tmp_path)))
    assert _persistent_rdds(spark) - before == set()


def it_frees_a_checkpoint_whose_job_fails_and_raises_that_jobs_error(spark):
    """The job that computes a checkpoint fails after other partitions were stored: the
    job's error is raised and no block is kept (``steps.checkpointed``)."""
    broken = F.udf(lambda n: 1 // (n - 7), "int")  # ZeroDivisionError on the row 7 only
    df = spark.range(0, 8, 1, 8).withColumn("y", broken("id"))
    before = _persistent_rdds(spark)
    with pytest.raises(Exception, match="ZeroDivisionError"), steps.local_checkpoint(df):
        pass
    assert _persistent_rdds(spark) - before == set()


def it_computes_a_checkpoint_with_the_sessions_sql_settings(spark):
    """The session parses with the CORRECTED policy (an impossible date is null): the tasks
    of a checkpoint's job must see that too, not Spark's default, which raises."""
    df = spark.createDataFrame([("29-02-1500",), ("28-02-1500",)], "day string")
    parsed = df.select(F.to_date("day", "dd-MM-yyyy").alias("day"))
    with steps.local_checkpoint(parsed) as checkpoint:
        days = sorted(str(row["day"]) for row in checkpoint.collect())
    assert days == ["1500-02-28", "None"]


def it_keeps_the_steps_own_error_when_freeing_a_checkpoint_fails(spark, monkeypatch, capsys):
    """Freeing runs in ``finally`` blocks: when it fails (a stopped context), one warning
    line, and the error that ended the step is the one raised."""

    class Stopped:
        def unpersist(self, blocking: bool) -> None:
            raise RuntimeError(
                "An error occurred while calling o1.unpersist.\nNullPointerException"
            )

    with (
        pytest.raises(ValueError, match="the step's own error"),
        steps.local_checkpoint(spark.range(3)) as checkpoint,
    ):
        monkeypatch.setattr(steps, "_checkpoint_rdd", lambda _: Stopped())
        raise ValueError("the step's own error")
    monkeypatch.undo()
    steps.release_checkpoint(checkpoint)  # freed for real, for the tests that follow
    assert capsys.readouterr().err == (
        "warning: a checkpoint's blocks were not freed: "
        "An error occurred while calling o1.unpersist.\n"
    )
