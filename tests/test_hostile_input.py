"""Issue 14, data correctness: raw files that are broken, hostile or unlucky (items 1–6).

Each test writes the bytes a user could really hand us and checks what SPEC §1/§3 promise:
a quarantined record with a reason, or one clear error naming the file; never a silent change.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import duckdb
import pytest
from pyspark.sql import Row
from sample_rows import location, rental, user, vehicle
from tables import SPEC_COLUMNS, assert_same_table, read_table

from rental_kpis.devtools.reference import run_reference
from rental_kpis.errors import InputError
from rental_kpis.layout import DATASETS, TABLES, Lake, raw_input_files
from rental_kpis.spark import kpis
from rental_kpis.spark.readers import read_raw
from rental_kpis.spark.schemas import REJECTION_REASON, column_names
from rental_kpis.spark.session import quick_start_conf
from rental_kpis.spark.validation import (
    CORRUPT_RECORD,
    curated_rows,
    flag_all,
    summarise,
)

TX = "rental_transactions"
TX_HEADER = ",".join(column_names(TX))
OK = "2024-03-01 10:00:00,2024-03-01 12:00:00"  # start,end of a valid two-hour rental


def write(folder: Path, data: str | bytes, name: str = "part-1.csv") -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data.encode() if isinstance(data, str) else data)
    return str(folder)


def csv_line(row: dict, names: list[str]) -> str:
    """One RFC 4180 record: every field quoted, quotes doubled."""
    return ",".join('"' + (row[n] or "").replace('"', '""') + '"' for n in names) + "\n"


def write_raw(root: Path, rows: dict[str, list[dict]], text: dict[str, str] | None = None) -> Path:
    """A raw folder with one file per dataset: hand-made rows, or the exact ``text`` given."""
    for name in DATASETS:
        names = column_names(name)
        body = (text or {}).get(name)
        if body is None:
            body = ",".join(names) + "\n" + "".join(csv_line(r, names) for r in rows[name])
        write(root / name, body, f"{name}.csv")
    return root


DIMENSIONS = {
    "locations": [location("1"), location("2")],
    "vehicles": [vehicle("V1")],
    "users": [user("U1")],
}


def validate_folder(spark, raw: Path) -> dict:
    """read_raw + flag_all on a raw folder: the flagged frames, as validate_raw builds them."""
    frames = {name: read_raw(spark, name, str(raw / name)) for name in DATASETS}
    return flag_all(frames)


def reasons(flagged) -> dict[str, str | None]:
    return {r["rental_id"]: r[REJECTION_REASON] for r in flagged.collect()}


# ---------------------------------------------------------------- 1. extra columns


def it_checks_record_width_against_the_header_even_when_an_extra_column_is_ignored(spark, tmp_path):
    uri = write(
        tmp_path / "tx",
        TX_HEADER + ",note\n"
        f"R1,U1,V1,{OK},1,2,20,fine\n"
        f"R2,U1,V1,{OK},1,2,1,000,comma in the amount\n"  # one field too many
        f"R3,U1,V1,{OK},1,2,20\n"  # one field short
        "R4,U1\n",
    )
    rows = {r["rental_id"]: r for r in read_raw(spark, TX, uri).collect()}
    assert rows["R1"][CORRUPT_RECORD] is None
    assert rows["R1"]["total_amount"] == "20"
    assert rows["R2"][CORRUPT_RECORD] == f"R2,U1,V1,{OK},1,2,1,000,comma in the amount"
    assert rows["R3"][CORRUPT_RECORD] == f"R3,U1,V1,{OK},1,2,20"
    assert rows["R4"][CORRUPT_RECORD] == "R4,U1"


# ---------------------------------------------------------------- 2. RFC 4180 quoting


def it_reads_rfc_4180_quoting_doubled_quotes_newlines_and_plain_backslashes(spark, tmp_path):
    header = ",".join(column_names("locations"))
    raw = write_raw(
        tmp_path / "raw",
        {**DIMENSIONS, TX: [rental("R1", pickup="7", dropoff="8")]},
        text={
            "locations": header + "\n"
            '7,"Harbor ""Point""\nNorth gate","C:\\lots\\",Austin,TX,02134,30.2,-97.7\n'
            '8,"Back\\","slash, then a comma",Austin,TX,02134,30.2,-97.7\n',
        },
    )
    flagged = validate_folder(spark, raw)
    locations = curated_rows(flagged["locations"], "locations").orderBy("location_id").collect()
    assert [(r["location_id"], r["location_name"], r["address"]) for r in locations] == [
        (7, 'Harbor "Point"\nNorth gate', "C:\\lots\\"),
        (8, "Back\\", "slash, then a comma"),
    ]
    counts = summarise(flagged["locations"], "locations")
    assert (counts.input_rows, counts.valid_rows, counts.rejected_rows) == (2, 2, 0)
    assert reasons(flagged[TX]) == {"R1": None}


def it_counts_a_malformed_multi_line_record_once_and_keeps_its_text(spark, tmp_path):
    uri = write(
        tmp_path / "tx",
        TX_HEADER + "\n"
        f'R1,"U\n1",V1,{OK},1,2\n'  # two lines, one record, two fields short
        f"R2,U1,V1,{OK},1,2,20\n",
    )
    rows = {r["rental_id"]: r[CORRUPT_RECORD] for r in read_raw(spark, TX, uri).collect()}
    assert rows == {"R1": f'R1,"U\n1",V1,{OK},1,2', "R2": None}


# ---------------------------------------------------------------- 3. amounts


AMOUNTS = {
    "1e309": "unparseable_total_amount",  # Infinity as a double
    "-1e309": "unparseable_total_amount",
    "1e28": "unparseable_total_amount",  # beyond decimal(38,10), the exact money sum type
    "123456789012345678901234567890": "unparseable_total_amount",
    "12345678901234567": "unparseable_total_amount",  # more digits than a double keeps
    "0.00000000001": "unparseable_total_amount",  # below the sum's 10 decimal places
    "9999999999999.99": None,
    "1e27": None,
    "0.0000000001": None,
    "20": None,
}


def it_rejects_amounts_the_money_type_cannot_hold_exactly(spark, tmp_path):
    rentals = [rental(f"A{i}", amount=a) for i, a in enumerate(AMOUNTS)]
    raw = write_raw(tmp_path / "raw", {**DIMENSIONS, TX: rentals})
    flagged = validate_folder(spark, raw)[TX]
    got = reasons(flagged)
    assert {a: got[f"A{i}"] for i, a in enumerate(AMOUNTS)} == AMOUNTS
    curated = curated_rows(flagged, TX).collect()
    assert sorted(r["total_amount"] for r in curated) == [1e-10, 20.0, 9999999999999.99, 1e27]


@pytest.mark.parametrize("second_vehicle", ["V1", "V2"], ids=["one vehicle", "two vehicles"])
def it_fails_loudly_when_a_money_sum_would_overflow(spark, second_vehicle):
    """Daily sums overflow in one group; vehicle types sum per vehicle first, so the sum that
    overflows is a vehicle's (one vehicle) or the type's over two vehicles' partial sums."""
    rentals = spark.createDataFrame(
        [Row("R1", "U1", "V1", 1, 2, 6e27), Row("R2", "U1", second_vehicle, 1, 2, 6e27)],
        "rental_id string, user_id string, vehicle_id string, pickup_location int, "
        "dropoff_location int, total_amount double",
    ).selectExpr(
        "*",
        "timestamp'2024-03-01 10:00:00' AS rental_start_time",
        "timestamp'2024-03-01 12:00:00' AS rental_end_time",
    )
    vehicles = spark.createDataFrame(
        [("V1", "SUV"), ("V2", "SUV")], "vehicle_id string, vehicle_type string"
    )
    overflow = r"total_amount sums to more than decimal\(38,10\) holds"
    with pytest.raises(Exception, match=overflow):
        kpis.daily_metrics(rentals).collect()
    with pytest.raises(Exception, match=overflow):
        kpis.vehicle_type_performance(rentals, vehicles).collect()
    within = rentals.where("rental_id = 'R1'")
    assert kpis.vehicle_type_performance(within, vehicles).first()["total_revenue"] == 6e27


# ---------------------------------------------------------------- 4. encodings


def it_rejects_rows_that_are_not_utf8_or_hold_a_nul_byte(spark, tmp_path):
    lines = [
        TX_HEADER.encode(),
        f"R1,José,V1,{OK},1,2,20".encode(),  # UTF-8: fine
        f"R2,José,V1,{OK},1,2,20".encode("latin-1"),  # Latin-1 é: not UTF-8
        f"R3,U1,V1\x00,{OK},1,2,20".encode(),  # a NUL byte
        f"R4,\ufffd,V1,{OK},1,2,20".encode(),  # a real U+FFFD is valid UTF-8
        f"R5,U1,V1,{OK},1,2,20".encode(),
    ]
    uri = write(tmp_path / "tx", b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")
    rows = {r["rental_id"]: r for r in read_raw(spark, TX, uri).collect()}
    assert [rows[i][CORRUPT_RECORD] is None for i in ("R1", "R2", "R3", "R4", "R5")] == [
        True,
        False,
        False,
        True,
        True,
    ]
    assert (rows["R1"]["user_id"], rows["R4"]["user_id"]) == ("José", "\ufffd")
    assert rows["R2"][CORRUPT_RECORD] == f"R2,Jos\ufffd,V1,{OK},1,2,20"
    assert rows["R3"][CORRUPT_RECORD] == f"R3,U1,V1\x00,{OK},1,2,20"


def it_says_in_one_line_that_a_utf16_file_is_not_utf8(spark, tmp_path):
    uri = write(tmp_path / "tx", (TX_HEADER + f"\nR1,U1,V1,{OK},1,2,20\n").encode("utf-16"))
    with pytest.raises(InputError) as caught:
        read_raw(spark, TX, uri)
    message = str(caught.value)
    assert message == (
        f"dataset 'rental_transactions' at {uri}: file {uri}/part-1.csv is not UTF-8 "
        "(it starts with a UTF-16 byte order mark); save it as UTF-8"
    )


def it_names_dataset_file_and_column_of_a_duplicated_header_column(spark, tmp_path):
    uri = write(tmp_path / "tx", TX_HEADER + ",user_id\n" + f"R1,U1,V1,{OK},1,2,20,U2\n")
    with pytest.raises(InputError) as caught:
        read_raw(spark, TX, uri)
    assert str(caught.value) == (
        f"dataset 'rental_transactions' at {uri}: file {uri}/part-1.csv has column "
        "'user_id' twice; column names must be unique"
    )


def it_exits_2_with_one_line_for_a_duplicated_header_column_under_spark_submit(tmp_path):
    from rental_kpis.local.submit import spark_submit
    from rental_kpis.project import EMR_STEPS_DIR, build_library_zip

    lake = Lake(str(tmp_path / "lake"))
    write_raw(Path(lake.uri("raw")), {**DIMENSIONS, TX: [rental("R1")]})
    path = Path(lake.raw("users"), "users.csv")
    path.write_text(path.read_text().replace("is_active", "user_id", 1))
    result = spark_submit(
        EMR_STEPS_DIR / "validate_raw.py",
        ["--lake-root", lake.root],
        [build_library_zip(tmp_path / "zip")],
        log_path=tmp_path / "x.log",
        conf=quick_start_conf(),
    )
    assert result.returncode == 2
    assert (
        f"error: dataset 'users' at {lake.raw('users')}: file {path} has column 'user_id' twice"
    ) in result.output
    assert "Traceback" not in result.output
    assert "AnalysisException" not in result.output


# ---------------------------------------------------------------- 5. which files are read


def it_reads_csv_upper_case_csv_and_gzip_files_of_a_dataset(spark, tmp_path):
    folder = tmp_path / "tx"
    write(folder, TX_HEADER + f"\nR1,U1,V1,{OK},1,2,20\n", "a.csv")
    write(folder, TX_HEADER + f"\nR2,U1,V1,{OK},1,2,20\n", "b.CSV")
    write(folder, gzip.compress((TX_HEADER + f"\nR3,U1,V1,{OK},1,2,20\n").encode()), "c.csv.gz")
    rows = read_raw(spark, TX, str(folder)).collect()
    assert sorted((r["rental_id"], r[CORRUPT_RECORD]) for r in rows) == [
        ("R1", None),
        ("R2", None),
        ("R3", None),
    ]


@pytest.mark.parametrize("name", ["_x.csv", ".hidden.csv", "notes.txt", "a.csv.bz2", "b.Csv"])
def it_refuses_any_other_file_in_a_dataset_folder_and_names_it(spark, tmp_path, name):
    folder = tmp_path / "tx"
    write(folder, TX_HEADER + f"\nR1,U1,V1,{OK},1,2,20\n", "a.csv")
    write(folder, "R9,U1\n", name)
    with pytest.raises(InputError) as caught:
        read_raw(spark, TX, str(folder))
    assert str(caught.value) == (
        f"dataset 'rental_transactions' at {folder}: {folder / name} is not a data file "
        "(a dataset folder holds only *.csv, *.CSV and *.csv.gz files)"
    )


def it_names_a_gzip_file_that_is_not_gzip(spark, tmp_path):
    folder = tmp_path / "tx"
    write(folder, TX_HEADER + f"\nR1,U1,V1,{OK},1,2,20\n", "a.csv.gz")
    with pytest.raises(InputError) as caught:
        read_raw(spark, TX, str(folder))
    message = str(caught.value)  # the cause's wording depends on Hadoop's gzip codec
    assert message.startswith(
        f"dataset 'rental_transactions' at {folder}: file {folder}/a.csv.gz cannot be read: "
        "java.io.IOException: "
    )
    assert "gzip" in message.lower()
    assert "\n" not in message


def it_copies_the_same_files_into_the_lake_that_the_reader_accepts(tmp_path):
    raw = write_raw(tmp_path / "raw", {**DIMENSIONS, TX: []})
    write(raw / TX, "x", "more.CSV")
    write(raw / TX, gzip.compress(b"x"), "more.csv.gz")
    assert [p.name for p in raw_input_files(raw)[TX]] == [
        "more.CSV",
        "more.csv.gz",
        "rental_transactions.csv",
    ]
    write(raw / "users", "x", "_partial.csv")
    with pytest.raises(InputError, match=r"_partial\.csv is not a data file"):
        raw_input_files(raw)


# ---------------------------------------------------------------- 6. zero valid rows


@pytest.mark.slow
def it_completes_a_run_with_zero_valid_rows_and_registers_empty_tables(tmp_path, spark):
    from rental_kpis import queries
    from rental_kpis.local import athena, glue
    from rental_kpis.local.runner import run_local

    raw = write_raw(
        tmp_path / "raw",
        {
            "locations": [location("")],  # missing_key
            "vehicles": [vehicle("")],
            "users": [user(" ")],
            TX: [rental("R1", amount="1e309")],
        },
    )
    result = run_local(raw, tmp_path / "lake", run_id="empty", spark=spark)
    assert [s.step for s in result.steps][-2:] == ["crawl", "queries"]
    counts = result.steps[0].summary["datasets"]
    assert {name: (c["input_rows"], c["valid_rows"]) for name, c in counts.items()} == {
        name: (1, 0) for name in DATASETS
    }
    tables = {t.name: t for t in glue.get_tables(result.lake)}
    assert sorted(tables) == sorted(TABLES)
    for name in TABLES:
        columns = tables[name].columns + tables[name].partition_keys
        assert [c for c, _ in columns] == [c for c, _ in SPEC_COLUMNS[name]] + (
            ["year", "month"] if name == "daily_metrics" else []
        )
    for name in queries.names():
        assert athena.run_named_query(result.lake, name).rows == [], name
    record = json.loads(Path(result.lake.uri("runs", "empty", "run.json")).read_text())
    assert record["status"] == "succeeded"
    shutil.rmtree(tmp_path / "lake")


# ---------------------------------------------------------------- 7. dates at the calendar's edges

# Sentinel and ancient dates as real exports hold them: before the Gregorian reform (1582-10-15,
# where Spark 2 and Hive switch calendars), before 1900 (the INT96 timestamps' rebase limit), in
# the days the Julian calendar skipped (1582-10-05..14), and at the year 9999.
EDGE_USERS = {
    "U1": ("0001-01-01", "1582-10-10"),  # (driver_license_expiry, creation_date)
    "U2": ("1500-02-29", "1899-12-31"),  # a Julian leap day: not a proleptic Gregorian date
    "U3": ("9999-12-31", "1900-01-01"),
}
EDGE_RENTALS = {
    "R1": ("0001-01-01 00:00:00", "0001-01-01 02:00:00", "U1"),
    "R2": ("1582-10-10 10:00:00", "1582-10-10 13:00:00", "U2"),
    "R3": ("1899-12-31 23:00:00", "1900-01-01 01:00:00", "U3"),
    "R4": ("9999-12-31 20:00:00", "9999-12-31 23:00:00", "U1"),
}


def parquet_rows(folder: str, columns: str) -> list[tuple]:
    """``columns`` of the Parquet files under ``folder`` as DuckDB reads them (as Athena does),
    sorted."""
    files = f"{folder}/**/*.parquet"
    sql = f"SELECT {columns} FROM read_parquet('{files}', hive_partitioning = true)"
    return sorted(duckdb.sql(sql).fetchall())


@pytest.fixture(scope="module")
def edge_run(spark, tmp_path_factory):
    """A whole local run on raw files of ``EDGE_USERS``, ``EDGE_RENTALS`` and a vehicle of
    1500 last updated in 1899."""
    from rental_kpis.local.runner import run_local

    root = tmp_path_factory.mktemp("edges")
    users = [
        {**user(uid), "driver_license_expiry": expiry, "creation_date": created}
        for uid, (expiry, created) in EDGE_USERS.items()
    ]
    old = {**vehicle("V1"), "expiration_date": "01-01-1500"}
    old["last_update_timestamp"] = "31-12-1899 23:59:59"
    rentals = [
        rental(rid, user_id=uid, start=start, end=end, amount="10")
        for rid, (start, end, uid) in EDGE_RENTALS.items()
    ]
    rows = {"locations": DIMENSIONS["locations"], "vehicles": [old], "users": users, TX: rentals}
    raw = write_raw(root / "raw", rows)
    return raw, run_local(raw, root / "lake", run_id="edges", spark=spark)


@pytest.mark.slow
def it_completes_a_run_with_dates_before_1582_and_timestamps_before_1900(edge_run):
    """Spark's default Parquet rebase mode (EXCEPTION) refused such values and stopped the run;
    they are valid proleptic Gregorian values (docs/validation.md), every row accounted for."""
    _, result = edge_run
    counts = result.steps[0].summary["datasets"]
    assert {n: (c["input_rows"], c["valid_rows"]) for n, c in counts.items()} == {
        "locations": (2, 2), "vehicles": (1, 1), "users": (3, 3), TX: (4, 4)
    }  # fmt: skip
    assert [s.step for s in result.steps][-1] == "queries"


EDGE_CURATED_USERS = [
    ("U1", "0001-01-01", "1582-10-10"),
    ("U2", None, "1899-12-31"),  # 1500-02-29 does not parse: null, as any bad attribute
    ("U3", "9999-12-31", "1900-01-01"),
]


@pytest.mark.slow
def it_writes_edge_dates_as_they_are_for_spark_and_duckdb_alike(edge_run, spark):
    lake = edge_run[1].lake
    columns = "user_id, CAST(driver_license_expiry AS STRING), CAST(creation_date AS STRING)"
    assert parquet_rows(lake.curated("users"), columns) == EDGE_CURATED_USERS
    by_spark = spark.read.parquet(lake.curated("users")).selectExpr(*columns.split(", "))
    assert sorted(tuple(r) for r in by_spark.collect()) == EDGE_CURATED_USERS
    columns = "CAST(expiration_date AS STRING), CAST(last_update_timestamp AS STRING)"
    assert parquet_rows(lake.curated("vehicles"), columns) == [
        ("1500-01-01", "1899-12-31 23:59:59")
    ]
    columns = "rental_id, CAST(rental_start_time AS STRING), CAST(rental_end_time AS STRING)"
    assert parquet_rows(lake.curated(TX), columns) == sorted(
        (rid, start, end) for rid, (start, end, _) in EDGE_RENTALS.items()
    )


@pytest.mark.slow
def it_computes_kpis_of_edge_dates_as_the_reference_does(edge_run):
    raw, result = edge_run
    lake = result.lake
    daily = parquet_rows(
        lake.processed("daily_metrics"), "CAST(rental_date AS STRING), total_rental_hours, year"
    )
    assert daily == [
        ("0001-01-01", 2.0, 1), ("1582-10-10", 3.0, 1582), ("1899-12-31", 2.0, 1899),
        ("9999-12-31", 3.0, 9999),
    ]  # fmt: skip
    users = parquet_rows(lake.processed("user_metrics"), "user_id, first_rental_start::VARCHAR")
    assert users == [
        ("U1", "0001-01-01 00:00:00"), ("U2", "1582-10-10 10:00:00"),
        ("U3", "1899-12-31 23:00:00"),
    ]  # fmt: skip
    reference = run_reference(raw)
    for table in TABLES:
        assert_same_table(table, read_table(lake.processed(table)), reference.tables[table])


@pytest.mark.slow
def it_converts_edge_timestamps_to_pandas_as_the_notebooks_show_them(edge_run, spark):
    """Notebook 02 shows the KPI tables through toPandas, which went through pandas'
    nanoseconds (years 1677-2262) and failed on a rental validation had accepted."""
    users = spark.read.parquet(edge_run[1].lake.processed("user_metrics"))
    shown = users.orderBy("user_id").select("user_id", "first_rental_start").toPandas()
    assert [(u, t.isoformat(sep=" ")) for u, t in shown.itertuples(index=False)] == [
        ("U1", "0001-01-01 00:00:00"), ("U2", "1582-10-10 10:00:00"),
        ("U3", "1899-12-31 23:00:00"),
    ]  # fmt: skip
