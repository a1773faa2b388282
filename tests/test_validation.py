"""SPEC §3 on hand-made rows: every reason, the first-reason-wins order, duplicates, conflicts."""

from __future__ import annotations

from datetime import datetime

import pytest
from conftest import raw_frame
from pyspark.sql import functions as F
from sample_rows import location, rental, user, vehicle

from rental_kpis.spark.schemas import REJECTION_REASON, TRANSACTION_REASONS
from rental_kpis.spark.validation import (
    curated_rows,
    flag_all,
    rejected_rows,
    summarise,
)

DIMENSIONS = {
    "locations": [location("1"), location("2")],
    "vehicles": [vehicle("V1"), vehicle("V2", "premium")],
    "users": [user("U1"), user("U2", "Bo", "Kim")],
}


def validate(spark, rentals, **dimensions):
    rows = {**DIMENSIONS, **dimensions, "rental_transactions": rentals}
    raw = {name: raw_frame(spark, name, data) for name, data in rows.items()}
    return flag_all(raw)


def validate_rentals(spark, rentals, **dimensions):
    return validate(spark, rentals, **dimensions)["rental_transactions"]


def reasons_by_id(flagged) -> dict[str, str | None]:
    rows = flagged.select("rental_id", REJECTION_REASON).collect()
    return {row["rental_id"]: row[REJECTION_REASON] for row in rows}


# One hand-made row per reason; each damages a valid rental in exactly one way.
REASON_CASES = {
    "malformed_row": {**rental("R1"), "_corrupt_record": "R1,U1"},
    "missing_rental_id": rental(None),
    "unparseable_user_id": rental("R1", user_id=" "),
    "unparseable_vehicle_id": rental("R1", vehicle_id=None),
    "unparseable_rental_start_time": rental("R1", start="2024-02-30 10:00:00"),
    "unparseable_rental_end_time": rental("R1", end="2024-03-01T12:00:00"),
    "unparseable_pickup_location": rental("R1", pickup="1.5"),
    "unparseable_dropoff_location": rental("R1", dropoff="two"),
    "unparseable_total_amount": rental("R1", amount="NaN"),
    "non_positive_duration": rental("R1", end="2024-03-01 10:00:00"),
    "negative_amount": rental("R1", amount="-0.01"),
    "unknown_user": rental("R1", user_id="U9"),
    "unknown_vehicle": rental("R1", vehicle_id="V9"),
    "unknown_pickup_location": rental("R1", pickup="7"),
    "unknown_dropoff_location": rental("R1", dropoff="8"),
}


def test_every_reason_has_a_case():
    assert set(REASON_CASES) | {"conflicting_rental_id"} == set(TRANSACTION_REASONS)


ODD_AMOUNTS = ["Infinity", "-Infinity", "inf", "1.5d", "0x10", "", "1,5"]
BAD_STAMPS = [
    "2024-02-30 10:00:00",
    "2023-02-29 00:00:00",
    "2024-01-01 24:00:00",
    "2024-1-01 10:00:00",
    "garbage",
]


@pytest.fixture(scope="module")
def single_defect_reasons(spark) -> dict[str, str | None]:
    """Every one-defect row validated in one Spark run, keyed by a case id (rental ids differ)."""
    cases = {f"reason:{reason}": row for reason, row in REASON_CASES.items()}
    cases |= {f"amount:{a}": rental("", amount=a) for a in ODD_AMOUNTS}
    cases |= {f"stamp:{s}": rental("", start=s) for s in BAD_STAMPS}
    cases["valid"] = rental("")
    rows = []
    for case, row in cases.items():
        # the case id goes into rental_id, except where the case is about rental_id itself
        rows.append({**row, "rental_id": None if row["rental_id"] is None else case})
    flagged = validate_rentals(spark, rows)
    reasons = {
        r["rental_id"]: r[REJECTION_REASON]
        for r in flagged.select("rental_id", REJECTION_REASON).collect()
    }
    reasons["reason:missing_rental_id"] = reasons.pop(None)
    return reasons


@pytest.mark.parametrize("reason", sorted(REASON_CASES))
def it_rejects_a_rental_with(single_defect_reasons, reason):
    assert single_defect_reasons[f"reason:{reason}"] == reason


def it_accepts_the_undamaged_rental(single_defect_reasons):
    assert single_defect_reasons["valid"] is None


@pytest.mark.parametrize("amount", ODD_AMOUNTS)
def it_treats_non_finite_or_odd_amounts_as_unparseable(single_defect_reasons, amount):
    assert single_defect_reasons[f"amount:{amount}"] == "unparseable_total_amount"


@pytest.mark.parametrize("stamp", BAD_STAMPS)
def it_rejects_impossible_or_misshapen_timestamps_without_crashing(single_defect_reasons, stamp):
    assert single_defect_reasons[f"stamp:{stamp}"] == "unparseable_rental_start_time"


def it_reports_only_the_first_failing_reason(spark):
    rentals = [
        rental("A", user_id="", amount="-5"),  # unparseable_user_id before negative_amount
        rental("B", end="2024-03-01 09:00:00", amount="-5"),  # duration before amount
        rental("C", user_id="U9", vehicle_id="V9", pickup="7"),  # unknown_user first
        rental("D", start="bad", end="bad", pickup="x"),  # start before end before pickup
        rental("E", amount="-5", pickup="7"),  # negative_amount before unknown_pickup
    ]
    assert reasons_by_id(validate_rentals(spark, rentals)) == {
        "A": "unparseable_user_id",
        "B": "non_positive_duration",
        "C": "unknown_user",
        "D": "unparseable_rental_start_time",
        "E": "negative_amount",
    }


def it_collapses_exact_duplicates_and_counts_them(spark):
    flagged = validate_rentals(spark, [rental("R1"), rental("R1"), rental("R1"), rental("R2")])
    counts = summarise(flagged, "rental_transactions")
    assert (
        counts.input_rows,
        counts.valid_rows,
        counts.rejected_rows,
        counts.deduplicated_rows,
    ) == (4, 2, 0, 2)
    assert curated_rows(flagged, "rental_transactions").count() == 2


def it_rejects_every_copy_of_a_conflicting_rental_id(spark):
    rentals = [rental("R1"), rental("R1", amount="30.0"), rental("R1", amount="30.0"), rental("R2")]
    flagged = validate_rentals(spark, rentals)
    rejected = rejected_rows(flagged, "rental_transactions").collect()
    assert sorted((r["rental_id"], r["total_amount"], r[REJECTION_REASON]) for r in rejected) == [
        ("R1", "20.0", "conflicting_rental_id"),
        ("R1", "30.0", "conflicting_rental_id"),
    ]
    counts = summarise(flagged, "rental_transactions")
    assert counts.as_dict() == {
        "input_rows": 4,
        "valid_rows": 1,
        "rejected_rows": 2,
        "deduplicated_rows": 1,
        "rejected_by_reason": {**{r: 0 for r in TRANSACTION_REASONS}, "conflicting_rental_id": 2},
    }


def it_keeps_the_earlier_reason_of_a_conflicting_row(spark):
    flagged = validate_rentals(spark, [rental("R1"), rental("R1", amount="-1")])
    rejected = rejected_rows(flagged, "rental_transactions").collect()
    assert sorted(r[REJECTION_REASON] for r in rejected) == [
        "conflicting_rental_id",
        "negative_amount",
    ]


def it_rejects_both_rows_of_a_conflicting_dimension_key_and_their_rentals(spark):
    vehicles = [vehicle("V1"), vehicle("V1", brand="Honda"), vehicle("V2")]
    flagged = validate(
        spark, [rental("R1", vehicle_id="V1"), rental("R2", vehicle_id="V2")], vehicles=vehicles
    )
    vehicle_reasons = sorted(
        (r["vehicle_id"], r[REJECTION_REASON])
        for r in flagged["vehicles"].select("vehicle_id", REJECTION_REASON).collect()
    )
    assert vehicle_reasons == [("V1", "conflicting_key"), ("V1", "conflicting_key"), ("V2", None)]
    assert reasons_by_id(flagged["rental_transactions"]) == {"R1": "unknown_vehicle", "R2": None}


def it_rejects_missing_and_unparseable_dimension_keys(spark):
    locations = [location("1"), location("2"), location(""), location("abc"), location("3.0")]
    flagged = validate(spark, [rental("R1")], locations=locations)
    counts = summarise(flagged["locations"], "locations")
    assert counts.rejected_by_reason == {"malformed_row": 0, "missing_key": 3, "conflicting_key": 0}
    assert counts.valid_rows == 2


def it_treats_location_ids_that_parse_equal_as_one_key(spark):
    locations = [location("1"), location("01"), location("2")]
    flagged = validate(spark, [rental("R1")], locations=locations)
    assert summarise(flagged["locations"], "locations").rejected_by_reason["conflicting_key"] == 2
    assert reasons_by_id(flagged["rental_transactions"]) == {"R1": "unknown_pickup_location"}


def it_keeps_numeric_looking_ids_as_strings(spark):
    flagged = validate(
        spark,
        [rental("0000000042", user_id="0001234567", vehicle_id="0000107")],
        users=[user("0001234567")],
        vehicles=[vehicle("0000107")],
    )
    curated = curated_rows(flagged["rental_transactions"], "rental_transactions")
    assert dict(curated.dtypes)["user_id"] == "string"
    row = curated.first()
    assert (row["rental_id"], row["user_id"], row["vehicle_id"]) == (
        "0000000042",
        "0001234567",
        "0000107",
    )


def it_keeps_the_true_duration_of_a_rental_across_a_dst_change(spark):
    # 2024-03-10 02:00 does not exist in US zones; the timestamps carry no zone and are UTC.
    flagged = validate_rentals(
        spark, [rental("R1", start="2024-03-10 01:30:00", end="2024-03-10 03:30:00")]
    )
    curated = curated_rows(flagged, "rental_transactions")
    row = curated.select(
        "rental_start_time",
        (F.unix_timestamp("rental_end_time") - F.unix_timestamp("rental_start_time")).alias("s"),
    ).first()
    assert row["s"] == 2 * 3600
    assert row["rental_start_time"] == datetime(2024, 3, 10, 1, 30)


def it_types_the_curated_tables_as_spec_says(spark):
    flagged = validate(spark, [rental("R1")])
    curated = {name: curated_rows(df, name) for name, df in flagged.items()}
    assert curated["rental_transactions"].dtypes == [
        ("rental_id", "string"),
        ("user_id", "string"),
        ("vehicle_id", "string"),
        ("rental_start_time", "timestamp"),
        ("rental_end_time", "timestamp"),
        ("pickup_location", "int"),
        ("dropoff_location", "int"),
        ("total_amount", "double"),
    ]
    vehicle_row = curated["vehicles"].where(F.col("vehicle_id") == "V1").first()
    assert vehicle_row["expiration_date"].isoformat() == "2025-12-31"
    assert vehicle_row["last_update_timestamp"] == datetime(2024, 1, 15, 8, 30)
    assert dict(curated["locations"].dtypes)["latitude"] == "double"


def it_refuses_checks_that_differ_from_the_spec_reasons(spark):
    from rental_kpis.spark.validation import in_reason_order

    checks = {reason: F.lit(False) for reason in TRANSACTION_REASONS}
    ordered = in_reason_order(checks, "rental_transactions")
    assert [r for r, _ in ordered] == list(TRANSACTION_REASONS)
    del checks["negative_amount"]
    with pytest.raises(ValueError, match="negative_amount"):
        in_reason_order(checks, "rental_transactions")
