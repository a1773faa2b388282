"""The hand-made world of test_kpis.py (see its docstring for every hand-worked number)."""

from __future__ import annotations

from datetime import datetime

from rental_kpis.spark.schemas import curated_schema


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def curated(spark, dataset: str, rows: list[dict]):
    schema = curated_schema(dataset)
    return spark.createDataFrame([tuple(r.get(f.name) for f in schema) for r in rows], schema)


def make_world(spark) -> dict:
    locations = curated(
        spark,
        "locations",
        [
            {
                "location_id": 1,
                "location_name": "Airport Lot, Austin #1",
                "city": "Austin",
                "state": "TX",
            },
            {
                "location_id": 2,
                "location_name": "Station Plaza, Dallas #2",
                "city": "Dallas",
                "state": "TX",
            },
            {
                "location_id": 3,
                "location_name": "Harbor Point, Miami #3",
                "city": "Miami",
                "state": "FL",
            },
            {
                "location_id": 4,
                "location_name": "Mall Parking, Austin #4",
                "city": "Austin",
                "state": "TX",
            },
        ],
    )
    vehicles = curated(
        spark,
        "vehicles",
        [
            {"vehicle_id": "V1", "vehicle_type": "basic"},
            {"vehicle_id": "V2", "vehicle_type": "basic"},
            {"vehicle_id": "V3", "vehicle_type": "premium"},
            {"vehicle_id": "V4", "vehicle_type": "high_end"},
        ],
    )
    users = curated(
        spark,
        "users",
        [
            {"user_id": "U1", "first_name": "Ana", "last_name": "Lee", "email": "a@x.org"},
            {"user_id": "U2", "first_name": "Bo", "last_name": "Kim"},
            {"user_id": "U3", "first_name": "Cy", "last_name": "Wu"},
            {"user_id": "U4", "first_name": "Di", "last_name": "No"},
        ],
    )

    def rental(rid, user, vehicle, start, end, pickup, dropoff, amount):
        return {
            "rental_id": rid,
            "user_id": user,
            "vehicle_id": vehicle,
            "rental_start_time": ts(start),
            "rental_end_time": ts(end),
            "pickup_location": pickup,
            "dropoff_location": dropoff,
            "total_amount": amount,
        }

    rentals = curated(
        spark,
        "rental_transactions",
        [
            rental("R1", "U1", "V1", "2024-03-01 10:00:00", "2024-03-01 12:00:00", 1, 2, 20.0),
            rental("R2", "U1", "V2", "2024-03-01 23:00:00", "2024-03-02 02:00:00", 1, 4, 30.0),
            rental("R3", "U2", "V3", "2024-03-10 01:30:00", "2024-03-10 03:30:00", 2, 1, 40.0),
            rental("R4", "U3", "V1", "2024-03-02 08:00:00", "2024-03-02 13:00:00", 2, 4, 50.0),
        ],
    )
    return {"locations": locations, "vehicles": vehicles, "users": users, "rentals": rentals}
