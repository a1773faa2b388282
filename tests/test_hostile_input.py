"""Issue 14, data correctness: raw files that are broken, hostile or unlucky (items 1–6).

Each test writes the bytes a user could really hand us and checks what SPEC §1/§3 promise:
a quarantined record with a reason, or one clear error naming the file; never a silent change.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from pyspark.sql import Row
from sample_rows import location, rental, user, vehicle
from tables import SPEC_COLUMNS

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
    return flag_all(frames, persist=False)


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
