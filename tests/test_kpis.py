"""SPEC §4 on a hand-made world whose every number was worked out by hand (see each test).

Locations 1..4 (3 has no rentals at all, 4 is only ever a dropoff); vehicles V1, V2 basic (a
two-vehicle fleet), V3 premium, V4 high_end (never rented); users U1..U4 (U4 never rents).

    R1 U1 V1 2024-03-01 10:00 -> 12:00        2 h  pickup 1 -> 2   20.0
    R2 U1 V2 2024-03-01 23:00 -> 03-02 02:00  3 h  pickup 1 -> 4   30.0  (crosses midnight)
    R3 U2 V3 2024-03-10 01:30 -> 03:30        2 h  pickup 2 -> 1   40.0  (crosses US DST)
    R4 U3 V1 2024-03-02 08:00 -> 13:00        5 h  pickup 2 -> 4   50.0

Period: 2024-03-01 10:00 -> 2024-03-10 03:30 = 209.5 h.
"""

from __future__ import annotations

from datetime import date

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual
from tables import SPEC_COLUMNS
from world import curated, make_world, ts

from rental_kpis.spark import kpis


@pytest.fixture(scope="module")
def world(spark):
    return make_world(spark)


def it_computes_location_performance(world):
    actual = kpis.location_performance(world["rentals"], world["locations"])
    assert actual.dtypes == SPEC_COLUMNS["location_performance"]
    assertDataFrameEqual(
        actual,
        [
            Row(
                1, "Airport Lot, Austin #1", "Austin", "TX", 50.0, 2, 25.0, 20.0, 30.0, 2, 1, 2.5, 1
            ),
            Row(
                2,
                "Station Plaza, Dallas #2",
                "Dallas",
                "TX",
                90.0,
                2,
                45.0,
                40.0,
                50.0,
                2,
                2,
                3.5,
                1,
            ),
            # no rentals at all: counts and sums 0, averages, minima and maxima null
            Row(
                3, "Harbor Point, Miami #3", "Miami", "FL", 0.0, 0, None, None, None, 0, 0, None, 0
            ),
            # only ever a dropoff
            Row(
                4,
                "Mall Parking, Austin #4",
                "Austin",
                "TX",
                0.0,
                0,
                None,
                None,
                None,
                0,
                0,
                None,
                2,
            ),
        ],
    )


def it_computes_vehicle_type_performance_with_utilization_worked_by_hand(world):
    actual = kpis.vehicle_type_performance(world["rentals"], world["vehicles"])
    assert actual.dtypes == SPEC_COLUMNS["vehicle_type_performance"]
    period = 209.5
    assertDataFrameEqual(
        actual,
        [
            # basic: V1 (2 h + 5 h) and V2 (3 h) -> 10 h over a fleet of 2 for 209.5 h
            Row("basic", 2, 3, 100.0, 100.0 / 3, 10.0, 10.0 / 3, 2.0, 5.0, 2, 10.0 / (2 * period)),
            Row("premium", 1, 1, 40.0, 40.0, 2.0, 2.0, 2.0, 2.0, 1, 2.0 / period),
            Row("high_end", 1, 0, 0.0, None, 0.0, None, None, None, 0, 0.0),
        ],
        rtol=1e-12,
    )


def it_computes_user_metrics_with_tied_spend_ranks(world):
    actual = kpis.user_metrics(world["rentals"], world["users"])
    assert actual.columns == list(kpis.USER_METRICS_COLUMNS)
    assert actual.dtypes == SPEC_COLUMNS["user_metrics"]
    assertDataFrameEqual(
        actual,
        [
            # U1 and U3 both spent 50.0: both rank 1; U2 is next, rank 2 (dense); U4 never rented
            Row(
                "U1",
                "Ana",
                "Lee",
                2,
                50.0,
                25.0,
                20.0,
                30.0,
                5.0,
                2.5,
                ts("2024-03-01 10:00:00"),
                ts("2024-03-01 23:00:00"),
                1,
            ),
            Row(
                "U2",
                "Bo",
                "Kim",
                1,
                40.0,
                40.0,
                40.0,
                40.0,
                2.0,
                2.0,
                ts("2024-03-10 01:30:00"),
                ts("2024-03-10 01:30:00"),
                2,
            ),
            Row(
                "U3",
                "Cy",
                "Wu",
                1,
                50.0,
                50.0,
                50.0,
                50.0,
                5.0,
                5.0,
                ts("2024-03-02 08:00:00"),
                ts("2024-03-02 08:00:00"),
                1,
            ),
        ],
    )


def it_computes_daily_metrics_on_the_start_date(world):
    actual = kpis.daily_metrics(world["rentals"])
    assert actual.columns == list(kpis.DAILY_METRICS_COLUMNS)
    assert dict(actual.dtypes)["rental_date"] == "date"
    assert dict(actual.dtypes)["year"] == "int"
    assertDataFrameEqual(
        actual,
        [
            # R2 starts 23:00 on the 1st and ends on the 2nd: it counts on the 1st, all 3 hours
            Row(date(2024, 3, 1), 2, 50.0, 25.0, 20.0, 30.0, 1, 2, 5.0, 2024, 3),
            Row(date(2024, 3, 2), 1, 50.0, 50.0, 50.0, 50.0, 1, 1, 5.0, 2024, 3),
            # R3 crosses the US DST change and still lasts 2 hours
            Row(date(2024, 3, 10), 1, 40.0, 40.0, 40.0, 40.0, 1, 1, 2.0, 2024, 3),
        ],
    )


def it_handles_a_world_with_no_valid_rentals(world):
    none = world["rentals"].limit(0)
    types = kpis.vehicle_type_performance(none, world["vehicles"]).collect()
    assert {
        r["vehicle_type"]: (r["rental_count"], r["total_revenue"], r["utilization_rate"])
        for r in types
    } == {"basic": (0, 0.0, None), "premium": (0, 0.0, None), "high_end": (0, 0.0, None)}
    locations = kpis.location_performance(none, world["locations"]).collect()
    assert [
        (r["transaction_count"], r["dropoff_count"], r["avg_rental_hours"]) for r in locations
    ] == [(0, 0, None)] * 4
    assert kpis.user_metrics(none, world["users"]).count() == 0
    assert kpis.daily_metrics(none).count() == 0


def it_sums_money_exactly_whatever_the_order(spark, world):
    rows = [
        {
            "rental_id": f"R{i}",
            "user_id": "U1",
            "vehicle_id": "V1",
            "rental_start_time": ts("2024-03-01 10:00:00"),
            "rental_end_time": ts("2024-03-01 11:00:00"),
            "pickup_location": 1,
            "dropoff_location": 2,
            "total_amount": amount,
        }
        for i, amount in enumerate([0.1, 0.2, 0.3] * 10)
    ]
    rentals = curated(spark, "rental_transactions", rows).repartition(7)
    total = kpis.user_metrics(rentals, world["users"]).first()["total_spent"]
    assert total == 6.0  # a plain double sum gives 6.000000000000001 or 5.999999999999999
