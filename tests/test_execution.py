"""``spark.execution``: the devices give exactly what the plain SPEC functions give, free
what they store, and run tasks side by side as a loop would.

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
- ``run_parallel``: results by name, the first failure in the given order, and an
  interruption that leaves no job running behind it.
"""

from __future__ import annotations

import _thread
import json
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import raw_frame
from pyspark.sql import functions as F
from sample_rows import location, rental, user, vehicle

from rental_kpis.devtools.datagen import MANIFEST, generate
from rental_kpis.layout import DATASETS, Lake
from rental_kpis.spark import execution, steps
from rental_kpis.spark.execution import (
    KEY_HASH,
    Validation,
    flag_in_memory,
    key_hash,
    run_parallel,
    shared_keys,
)
from rental_kpis.spark.readers import BYTES, SUSPECT, UTF8, read_raw
from rental_kpis.spark.schemas import REJECTION_REASON
from rental_kpis.spark.validation import (
    COPIES,
    CORRUPT_RECORD,
    RAW_LINE,
    collapse_duplicates,
    flag_all,
    parsed_key,
    with_dimension_reason,
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


LARGE = {execution.LARGE_CONF: "0"}  # every dataset takes the large-input path


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


def it_flags_as_the_spec_functions_do_with_and_without_the_shared_keys_first(spark):
    raw = _tricky_world(spark)
    plain = flag_all(raw)  # the SPEC functions alone
    fast, first = flag_in_memory(raw, False), flag_in_memory(raw, shared_keys_first=True)
    hashes = spark.createDataFrame([(k,) for k in ("R1", "R2", "R3", "R4")], "key string")
    wanted = hashes.select(key_hash(F.col("key")).alias(KEY_HASH))
    assert sorted(shared_keys(raw[TX], TX).collect()) == sorted(wanted.collect())
    for name in DATASETS:
        for flagged in (fast, first):
            assert flagged[name].columns == plain[name].columns
            assert _rows(flagged[name]) == _rows(plain[name]), name
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
    for name, df in raw.items():
        marked = execution.collapse(df, name, every[name])
        plain = collapse_duplicates(df, name)
        assert _rows(marked) == _rows(plain), name


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
    branch instead of reading the CSV again (``execution.collapse``)."""
    lake = Lake(str(small_raw.parent))
    with _settings(spark, LARGE), Validation(spark, lake) as run:
        reading = run.read("vehicles", UTF8)
        collapsed = execution.collapse(reading.raw, "vehicles", reading.shared)
        flagged = with_dimension_reason(collapsed, "vehicles")
        rows = flagged.collect()
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
    a small one's in a local checkpoint (``execution._store_small``). Both give the same
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
    reasons = steps.with_dimension_reason

    def failing(collapsed, dataset):
        if dataset == "locations":
            raise RuntimeError("locations broke")
        return reasons(collapsed, dataset)

    monkeypatch.setattr(steps, "with_dimension_reason", failing)
    before = _persistent_rdds(spark)
    with _settings(spark, LARGE), pytest.raises(RuntimeError, match="locations broke"):
        steps.validate_raw(spark, Lake(str(tmp_path)))
    assert _persistent_rdds(spark) - before == set()


def it_frees_a_checkpoint_whose_job_fails_and_raises_that_jobs_error(spark):
    """The job that computes a checkpoint fails after other partitions were stored: the
    job's error is raised and no block is kept (``execution.checkpointed``)."""
    broken = F.udf(lambda n: 1 // (n - 7), "int")  # ZeroDivisionError on the row 7 only
    df = spark.range(0, 8, 1, 8).withColumn("y", broken("id"))
    before = _persistent_rdds(spark)
    with pytest.raises(Exception, match="ZeroDivisionError"), execution.local_checkpoint(df):
        pass
    assert _persistent_rdds(spark) - before == set()


def it_computes_a_checkpoint_with_the_sessions_sql_settings(spark):
    """The session parses with the CORRECTED policy (an impossible date is null): the tasks
    of a checkpoint's job must see that too, not Spark's default, which raises."""
    df = spark.createDataFrame([("29-02-1500",), ("28-02-1500",)], "day string")
    parsed = df.select(F.to_date("day", "dd-MM-yyyy").alias("day"))
    with execution.local_checkpoint(parsed) as checkpoint:
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
        execution.local_checkpoint(spark.range(3)) as checkpoint,
    ):
        monkeypatch.setattr(execution, "_checkpoint_rdd", lambda _: Stopped())
        raise ValueError("the step's own error")
    monkeypatch.undo()
    execution.release_checkpoint(checkpoint)  # freed for real, for the tests that follow
    assert capsys.readouterr().err == (
        "warning: a checkpoint's blocks were not freed: "
        "An error occurred while calling o1.unpersist.\n"
    )


# ---------------------------------------------------------------- run_parallel


def it_returns_each_tasks_result_under_its_name_in_the_given_order(spark):
    results = run_parallel(
        spark,
        {
            "big": lambda: spark.range(1000).count(),
            "small": lambda: spark.range(10).count(),
            "python": lambda: "no job",
        },
    )
    assert list(results) == ["big", "small", "python"]
    assert results == {"big": 1000, "small": 10, "python": "no job"}


def it_raises_the_first_failure_in_the_given_order_not_the_first_in_time(spark):
    second_failed = threading.Event()
    finished: list[str] = []

    def first() -> None:
        second_failed.wait(30)  # fails after "second" has failed
        raise ValueError("first task")

    def second() -> None:
        second_failed.set()
        raise KeyError("second task")

    def third() -> int:
        count = spark.range(100).count()
        finished.append("third")  # runs to its end although others failed
        return count

    with pytest.raises(ValueError, match="first task"):
        run_parallel(spark, {"first": first, "second": second, "third": third})
    assert finished == ["third"]


def it_runs_a_single_task_in_the_calling_thread(spark):
    caller = threading.current_thread()
    assert run_parallel(spark, {"only": threading.current_thread}) == {"only": caller}


def it_cancels_the_jobs_of_an_interrupted_wait_and_leaves_the_session_usable(spark):
    """Ctrl-C while the tasks run: the KeyboardInterrupt propagates only once every task
    has stopped (its endless job cancelled), no stage is left running in the JVM, and the
    session still runs jobs.

    The endless job sleeps in Python workers, which Spark kills with a cancelled task: a
    JVM-only loop (``spark.range(...)`` summed) has no interruption check in its generated
    code and would go on burning both cores after its job was cancelled."""
    stopped: list[str] = []
    context = spark.sparkContext

    def endless() -> None:
        try:
            context.parallelize(range(2), 2).map(lambda _: time.sleep(3600)).collect()
        finally:
            stopped.append(threading.current_thread().name)

    threading.Timer(3.0, _thread.interrupt_main).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_parallel(spark, {"a": endless, "b": endless})
    assert len(stopped) == 2
    assert time.monotonic() - started < 60
    deadline = time.monotonic() + 30
    while context.statusTracker().getActiveStageIds() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert context.statusTracker().getActiveStageIds() == []
    assert spark.range(3).count() == 3
