"""Reading raw CSV files: headers by name, quoted commas, malformed lines, clear input errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from rental_kpis.errors import MissingColumnsError, MissingDatasetError
from rental_kpis.spark.readers import read_raw
from rental_kpis.spark.validation import CORRUPT_RECORD

HEADER = (
    "rental_id,user_id,vehicle_id,rental_start_time,rental_end_time,pickup_location,"
    "dropoff_location,total_amount"
)


def write(folder: Path, text: str, name: str = "part-1.csv") -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return str(folder)


def it_keeps_a_quoted_comma_inside_a_location_name(spark, tmp_path):
    uri = write(
        tmp_path / "locations",
        "location_id,location_name,address,city,state,zip_code,latitude,longitude\n"
        '7,"Airport Lot, Austin #7","1 Main St, Suite 2",Austin,TX,02134,30.2,-97.7\n',
    )
    row = read_raw(spark, "locations", uri).first()
    assert (row["location_name"], row["address"], row["zip_code"]) == (
        "Airport Lot, Austin #7",
        "1 Main St, Suite 2",
        "02134",
    )
    assert row[CORRUPT_RECORD] is None


def it_marks_lines_of_the_wrong_width_as_corrupt(spark, tmp_path):
    uri = write(
        tmp_path / "tx",
        HEADER + "\n"
        "R1,U1,V1,2024-03-01 10:00:00,2024-03-01 12:00:00,1,2,20\n"
        "R2,U1\n"
        "R3,U1,V1,2024-03-01 10:00:00,2024-03-01 12:00:00,1,2,20,extra\n",
    )
    rows = {
        r["rental_id"]: r[CORRUPT_RECORD]
        for r in read_raw(spark, "rental_transactions", uri).collect()
    }
    assert rows == {
        "R1": None,
        "R2": "R2,U1",
        "R3": "R3,U1,V1,2024-03-01 10:00:00,2024-03-01 12:00:00,1,2,20,extra",
    }


def it_matches_columns_by_name_and_ignores_extra_ones(spark, tmp_path):
    uri = write(
        tmp_path / "tx",
        "total_amount,note,rental_id,user_id,vehicle_id,rental_start_time,"
        "rental_end_time,pickup_location,dropoff_location\n"
        "20,hello,R1,U1,V1,2024-03-01 10:00:00,2024-03-01 12:00:00,1,2\n",
    )
    df = read_raw(spark, "rental_transactions", uri)
    assert df.columns == [*HEADER.split(","), CORRUPT_RECORD]
    row = df.first()
    assert (row["rental_id"], row["total_amount"], row[CORRUPT_RECORD]) == ("R1", "20", None)


def it_names_dataset_uri_and_columns_when_a_column_is_missing(spark, tmp_path):
    uri = write(tmp_path / "users", "user_id,first_name,email\nU1,Ana,a@example.com\n")
    with pytest.raises(MissingColumnsError) as caught:
        read_raw(spark, "users", uri)
    message = str(caught.value)
    assert message.startswith(
        f"dataset 'users' at {uri}: header lacks required column(s) "
        "last_name, phone_number, driver_license_number"
    )
    assert "(found: user_id, first_name, email)" in message


def it_names_the_dataset_and_uri_when_no_input_exists(spark, tmp_path):
    with pytest.raises(MissingDatasetError, match=r"dataset 'vehicles': no input files at .*/nope"):
        read_raw(spark, "vehicles", str(tmp_path / "nope"))
