"""The four datasets without defects, built column by column with numpy and pyarrow."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rental_kpis.devtools.datagen._shape import (
    BRANDS,
    CITIES,
    FIRST_NAMES,
    LAST_NAMES,
    MAX_HOURS,
    PERIOD_SECONDS,
    PERIOD_START,
    PRICE_PER_HOUR,
    SITE_KINDS,
    STREETS,
    VEHICLE_TYPES,
    Sizes,
)


def _pick(rng: np.random.Generator, values: list[str], n: int) -> pa.Array:
    return pa.array(np.asarray(values, dtype=object)[rng.integers(0, len(values), n)], pa.string())


def _digits(values: np.ndarray, width: int) -> pa.Array:
    """Integers as zero-padded strings: numeric-looking ids that must stay strings."""
    return pc.utf8_lpad(pc.cast(pa.array(values, pa.int64()), pa.string()), width, "0")


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values), pa.string())


def _timestamps(seconds: np.ndarray, fmt: str) -> pa.Array:
    stamps = pa.array(PERIOD_START + seconds.astype("timedelta64[s]"), pa.timestamp("s"))
    return pc.strftime(stamps, format=fmt)


def make_locations(rng: np.random.Generator, n: int) -> pa.Table:
    city_idx = rng.integers(0, len(CITIES), n)
    city_idx[: min(n, len(CITIES))] = np.arange(min(n, len(CITIES)))  # every city has a site
    cities = [CITIES[i] for i in city_idx]
    ids = np.arange(1, n + 1)
    kind = np.asarray(SITE_KINDS, dtype=object)[rng.integers(0, len(SITE_KINDS), n)]
    names = [f"{k}, {c[0]} #{i}" for k, c, i in zip(kind, cities, ids, strict=True)]
    streets = np.asarray(STREETS, dtype=object)[rng.integers(0, len(STREETS), n)]
    numbers = rng.integers(1, 9999, n)
    return pa.table(
        {
            "location_id": _text(ids),
            "location_name": pa.array(names),
            "address": pa.array(
                [
                    f"{no} {st}, Suite {i % 40 + 1}"
                    for no, st, i in zip(numbers, streets, ids, strict=True)
                ]
            ),
            "city": pa.array([c[0] for c in cities]),
            "state": pa.array([c[1] for c in cities]),
            "zip_code": _digits(rng.integers(501, 99950, n), 5),
            "latitude": _text(np.round(rng.uniform(25.0, 48.0, n), 6)),
            "longitude": _text(np.round(rng.uniform(-123.0, -71.0, n), 6)),
        }
    )


def make_vehicles(rng: np.random.Generator, n: int) -> tuple[pa.Table, np.ndarray]:
    """Vehicles, and each one's type index (to price its rentals)."""
    types = rng.permutation(np.arange(n) % len(VEHICLE_TYPES))  # an even split
    day = 24 * 3600
    return pa.table(
        {
            "active": _text((rng.random(n) < 0.9).astype(np.int64)),
            "vehicle_license_number": _digits(rng.integers(0, 10**7, n), 7),
            "registration_name": _join(_pick(rng, LAST_NAMES, n), ", ", _pick(rng, FIRST_NAMES, n)),
            "license_type": _pick(rng, ["FOR HIRE VEHICLE", "LIVERY", "BLACK CAR"], n),
            "expiration_date": _timestamps(rng.integers(200, 1100, n) * day, "%d-%m-%Y"),
            "permit_license_number": _join("P", _digits(rng.integers(0, 10**6, n), 6)),
            "certification_date": _timestamps(-rng.integers(30, 3000, n) * day, "%Y-%m-%d"),
            "vehicle_year": _text(rng.integers(2012, 2025, n)),
            "base_telephone_number": _join(
                "(",
                _digits(rng.integers(200, 999, n), 3),
                ") ",
                _digits(rng.integers(0, 10**7, n), 7),
            ),
            "base_address": _join(
                _text(rng.integers(1, 9999, n)),
                " ",
                _pick(rng, STREETS, n),
                ", ",
                _pick(rng, [c[0] for c in CITIES], n),
            ),
            "vehicle_id": _digits(np.arange(1, n + 1) * 7 + 100_000, 10),
            "last_update_timestamp": _timestamps(
                -rng.integers(0, 400 * day, n), "%d-%m-%Y %H:%M:%S"
            ),
            "brand": _pick(rng, BRANDS, n),
            "vehicle_type": pa.array(np.asarray(VEHICLE_TYPES, dtype=object)[types], pa.string()),
        }
    ), types


def make_users(rng: np.random.Generator, n: int) -> pa.Table:
    first, last = _pick(rng, FIRST_NAMES, n), _pick(rng, LAST_NAMES, n)
    ids = _digits(np.arange(1, n + 1) * 3 + 1_000, 10)
    day = 24 * 3600
    phone_style = rng.integers(0, 3, n)
    area, rest = _digits(rng.integers(200, 999, n), 3), _digits(rng.integers(0, 10**7, n), 7)
    phones = [
        f"({a}) {r[:3]}-{r[3:]}" if s == 0 else f"{a}.{r[:3]}.{r[3:]}" if s == 1 else f"+1 {a} {r}"
        for s, a, r in zip(phone_style, area.to_pylist(), rest.to_pylist(), strict=True)
    ]
    return pa.table(
        {
            "user_id": ids,
            "first_name": first,
            "last_name": last,
            "email": pc.utf8_lower(
                _join(first, ".", pc.replace_substring(last, "'", ""), ".", ids, "@example.com")
            ),
            "phone_number": pa.array(phones, pa.string()),
            "driver_license_number": _join("DL", _digits(rng.integers(0, 10**9, n), 9)),
            "driver_license_expiry": _timestamps(rng.integers(100, 3000, n) * day, "%Y-%m-%d"),
            "creation_date": _timestamps(-rng.integers(1, 1500, n) * day, "%Y-%m-%d"),
            "is_active": _text((rng.random(n) < 0.95).astype(np.int64)),
        }
    )


def make_transactions(
    rng: np.random.Generator,
    sizes: Sizes,
    vehicle_types: np.ndarray,
    users: pa.Table,
    vehicles: pa.Table,
) -> pa.Table:
    n = sizes.transactions
    vehicle_idx = rng.integers(0, sizes.vehicles, n)
    hours = rng.integers(1, MAX_HOURS + 1, n)
    start = rng.integers(0, PERIOD_SECONDS - MAX_HOURS * 3600, n)
    price = np.asarray(list(PRICE_PER_HOUR.values()))[vehicle_types[vehicle_idx]]
    pickup = rng.integers(1, sizes.locations + 1, n)
    dropoff = (pickup - 1 + rng.integers(1, sizes.locations, n)) % sizes.locations + 1
    return pa.table(
        {
            "rental_id": _digits(np.arange(1, n + 1), 12),
            "user_id": pc.take(users["user_id"], pa.array(rng.integers(0, sizes.users, n))),
            "vehicle_id": pc.take(vehicles["vehicle_id"], pa.array(vehicle_idx)),
            "rental_start_time": _timestamps(start, "%Y-%m-%d %H:%M:%S"),
            "rental_end_time": _timestamps(start + hours * 3600, "%Y-%m-%d %H:%M:%S"),
            "pickup_location": _text(pickup),
            "dropoff_location": _text(dropoff),
            "total_amount": _text(price * hours),
        }
    )
