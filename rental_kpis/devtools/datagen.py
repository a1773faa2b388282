"""Synthetic marketplace data with SPEC §1's shape, and exactly-counted defects (SPEC §3).

Vectorised with numpy and pyarrow: 10 million transactions take about a minute. The same seed
gives the same files. With a defect rate, every rejection reason is injected a known number of
times; ``generation_manifest.json`` records the counts the validation summary must reproduce.

Defects are built so that each row fails exactly the reason it was made for: a dimension's
defective rows use fresh keys no rental references, and transaction defects are disjoint.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from rental_kpis.errors import UsageError
from rental_kpis.layout import DATASETS, DIMENSIONS
from rental_kpis.spark.schemas import REASONS, column_names

PRICE_PER_HOUR = {"basic": 10.0, "premium": 20.0, "high_end": 50.0}
VEHICLE_TYPES = tuple(PRICE_PER_HOUR)
PERIOD_START = np.datetime64("2024-01-01T00:00:00", "s")
PERIOD_SECONDS = 152 * 24 * 3600  # January to May: ~5 months, two DST changes in US zones
MAX_HOURS = 72
MANIFEST = "generation_manifest.json"
# Dimensions are small: their defect rate is scaled up so that each reason shows up a few times.
DIMENSION_DEFECT_BOOST = 10

CITIES = [
    ("New York", "NY"),
    ("Los Angeles", "CA"),
    ("Chicago", "IL"),
    ("Houston", "TX"),
    ("Phoenix", "AZ"),
    ("Philadelphia", "PA"),
    ("San Antonio", "TX"),
    ("San Diego", "CA"),
    ("Dallas", "TX"),
    ("San Jose", "CA"),
    ("Austin", "TX"),
    ("Jacksonville", "FL"),
    ("Fort Worth", "TX"),
    ("Columbus", "OH"),
    ("Charlotte", "NC"),
    ("Indianapolis", "IN"),
    ("San Francisco", "CA"),
    ("Seattle", "WA"),
    ("Denver", "CO"),
    ("Washington", "DC"),
    ("Boston", "MA"),
    ("El Paso", "TX"),
    ("Nashville", "TN"),
    ("Detroit", "MI"),
    ("Oklahoma City", "OK"),
    ("Portland", "OR"),
    ("Las Vegas", "NV"),
    ("Memphis", "TN"),
    ("Louisville", "KY"),
    ("Baltimore", "MD"),
    ("Milwaukee", "WI"),
    ("Albuquerque", "NM"),
    ("Tucson", "AZ"),
    ("Fresno", "CA"),
    ("Sacramento", "CA"),
    ("Kansas City", "MO"),
    ("Mesa", "AZ"),
    ("Atlanta", "GA"),
    ("Omaha", "NE"),
    ("Colorado Springs", "CO"),
    ("Raleigh", "NC"),
    ("Long Beach", "CA"),
    ("Virginia Beach", "VA"),
    ("Miami", "FL"),
    ("Oakland", "CA"),
    ("Minneapolis", "MN"),
    ("Tulsa", "OK"),
    ("Bakersfield", "CA"),
    ("Wichita", "KS"),
    ("Arlington", "TX"),
]
FIRST_NAMES = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Chris",
    "Karen",
    "Daniel",
    "Lisa",
    "Matthew",
    "Nancy",
    "Ana",
    "Wei",
    "Fatima",
    "Oluwaseun",
    "Priya",
    "Mateo",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "O'Brien",
    "Nguyen",
    "Kim",
    "Okafor",
    "Patel",
    "Silva",
    "Rossi",
    "Müller",
    "Cohen",
]
BRANDS = [
    "Toyota",
    "Honda",
    "Ford",
    "Chevrolet",
    "Nissan",
    "Hyundai",
    "Kia",
    "Tesla",
    "BMW",
    "Mercedes-Benz",
    "Audi",
    "Lexus",
    "Volkswagen",
    "Subaru",
    "Mazda",
]
STREETS = [
    "Main St",
    "Oak Ave",
    "Maple Dr",
    "Cedar Ln",
    "Park Blvd",
    "Elm St",
    "Pine Rd",
    "Lake View Dr",
    "Washington Ave",
    "Market St",
]
SITE_KINDS = ["Airport Lot", "Downtown Garage", "Station Plaza", "Mall Parking", "Harbor Point"]


@dataclass(frozen=True)
class Sizes:
    transactions: int
    locations: int
    vehicles: int
    users: int

    @classmethod
    def for_transactions(cls, transactions: int) -> Sizes:
        """~300 locations, a vehicle per ~8 rentals, a user per ~3 rentals (a few rentals each)."""
        return cls(
            transactions=transactions,
            locations=300,
            vehicles=max(30, transactions // 8),
            users=max(30, transactions // 3),
        )

    def of(self, dataset: str) -> int:
        """The rows of ``dataset`` (one of ``layout.DATASETS``)."""
        return {
            "rental_transactions": self.transactions,
            "locations": self.locations,
            "vehicles": self.vehicles,
            "users": self.users,
        }[dataset]


# ---------------------------------------------------------------- vectorised helpers


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


# ---------------------------------------------------------------- clean datasets


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


# ---------------------------------------------------------------- defects


def _expected(n_valid: int, dataset: str) -> dict:
    return {
        "input_rows": n_valid,
        "valid_rows": n_valid,
        "rejected_rows": 0,
        "deduplicated_rows": 0,
        "rejected_by_reason": {r: 0 for r in REASONS[dataset]},
    }


def _reject(expected: dict, reason: str, rows: int) -> None:
    expected["rejected_by_reason"][reason] += rows
    expected["rejected_rows"] += rows
    expected["input_rows"] += rows


def _malformed_line(row: dict, columns: list[str], i: int) -> str:
    """A CSV record of the wrong width: a few fields short, or one field too many."""
    values = [row[c] or "" for c in columns]
    values = values[: len(values) // 2] if i % 2 else [*values, "unexpected"]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def _variant(options: list[str], i: int) -> str:
    return options[i % len(options)]


# Per transaction reason: how a clean row is damaged so that this reason, and no earlier one, fails.
def _damage(reason: str, row: dict, i: int, n_locations: int) -> dict:
    row = dict(row)
    if reason == "missing_rental_id":
        row["rental_id"] = _variant(["", " "], i)
    elif reason == "unparseable_user_id":
        row["user_id"] = _variant(["", "  "], i)
    elif reason == "unparseable_vehicle_id":
        row["vehicle_id"] = _variant(["", " "], i)
    elif reason == "unparseable_rental_start_time":
        row["rental_start_time"] = _variant(
            ["2024-02-30 10:00:00", "not a date", "2024/03/01 10:00:00", ""], i
        )
    elif reason == "unparseable_rental_end_time":
        row["rental_end_time"] = _variant(["2024-13-01 00:00:00", "", "2024-04-31 12:00:00"], i)
    elif reason == "unparseable_pickup_location":
        row["pickup_location"] = _variant(["abc", "", "1.5"], i)
    elif reason == "unparseable_dropoff_location":
        row["dropoff_location"] = _variant(["x12", "", "2.0"], i)
    elif reason == "unparseable_total_amount":
        row["total_amount"] = _variant(["NaN", "Infinity", "-Infinity", "", "abc"], i)
    elif reason == "non_positive_duration":
        if i % 2:
            row["rental_end_time"] = row["rental_start_time"]
        else:
            row["rental_start_time"], row["rental_end_time"] = (
                row["rental_end_time"],
                row["rental_start_time"],
            )
    elif reason == "negative_amount":
        row["total_amount"] = "-" + row["total_amount"]
    elif reason == "unknown_user":
        row["user_id"] = f"U-UNKNOWN-{i}"
    elif reason == "unknown_vehicle":
        row["vehicle_id"] = f"V-UNKNOWN-{i}"
    elif reason == "unknown_pickup_location":
        row["pickup_location"] = str(n_locations + 1000 + i)
    elif reason == "unknown_dropoff_location":
        row["dropoff_location"] = str(n_locations + 5000 + i)
    else:
        raise ValueError(f"no damage defined for {reason}")
    return row


@dataclass
class Written:
    table: pa.Table
    malformed_lines: list[str]
    expected: dict


# Reasons whose rentals are not made by damaging one clean row's value.
TRANSACTION_UNDAMAGED = ("malformed_row", "conflicting_rental_id")


def add_transaction_defects(
    rng: np.random.Generator,
    table: pa.Table,
    per_reason: int,
    n_locations: int,
) -> Written:
    dataset = "rental_transactions"
    expected = _expected(table.num_rows, dataset)
    if per_reason == 0:
        return Written(table, [], expected)
    damaged = [r for r in REASONS[dataset] if r not in TRANSACTION_UNDAMAGED]
    groups = len(damaged) + 3  # + malformed, conflict sources, duplicate sources
    picked = rng.choice(table.num_rows, size=per_reason * groups, replace=False)
    chunks = picked.reshape(groups, per_reason)
    new_rows: list[dict] = []
    for reason, idx in zip(damaged, chunks[: len(damaged)], strict=True):
        for i, row in enumerate(table.take(pa.array(idx)).to_pylist()):
            new_rows.append(_damage(reason, row, i, n_locations))
        expected["rejected_by_reason"][reason] += per_reason
        expected["rejected_rows"] += per_reason
        expected["valid_rows"] -= per_reason
    malformed_idx, conflict_idx, duplicate_idx = chunks[len(damaged) :]
    columns = table.column_names
    malformed = [
        _malformed_line(row, columns, i)
        for i, row in enumerate(table.take(pa.array(malformed_idx)).to_pylist())
    ]
    expected["rejected_by_reason"]["malformed_row"] += per_reason
    expected["rejected_rows"] += per_reason
    expected["valid_rows"] -= per_reason
    for row in table.take(pa.array(conflict_idx)).to_pylist():
        other = dict(row)
        other["total_amount"] = str(float(row["total_amount"]) + 1.0)
        new_rows.append(other)  # the original stays: both copies are rejected
    expected["valid_rows"] -= per_reason
    _reject(expected, "conflicting_rental_id", 2 * per_reason)
    expected["input_rows"] -= per_reason  # the originals were counted in input already
    new_rows += table.take(pa.array(duplicate_idx)).to_pylist()
    expected["input_rows"] += per_reason
    expected["deduplicated_rows"] += per_reason

    keep = np.ones(table.num_rows, dtype=bool)
    keep[np.concatenate([*chunks[: len(damaged)], malformed_idx])] = False
    extra = pa.Table.from_pylist(new_rows, schema=table.schema)
    combined = pa.concat_tables([table.filter(pa.array(keep)), extra])
    return Written(combined.take(pa.array(rng.permutation(combined.num_rows))), malformed, expected)


def add_dimension_defects(
    rng: np.random.Generator,
    dataset: str,
    table: pa.Table,
    key: str,
    per_reason: int,
) -> Written:
    """Malformed lines, missing keys and conflicting keys on FRESH keys no rental uses, and
    exact duplicates of existing rows (which stay valid)."""
    expected = _expected(table.num_rows, dataset)
    if per_reason == 0:
        return Written(table, [], expected)
    picked = rng.choice(table.num_rows, DIMENSION_ROWS_PER_DEFECT * per_reason, replace=False)
    sources = table.take(pa.array(picked))
    rows = sources.to_pylist()
    fresh = [
        f"{900000 + i}" if dataset == "locations" else f"X{dataset[0].upper()}{i:08d}"
        for i in range(2 * per_reason)
    ]
    columns = table.column_names
    malformed = [
        _malformed_line({**row, key: fresh[i]}, columns, i)
        for i, row in enumerate(rows[:per_reason])
    ]
    _reject(expected, "malformed_row", per_reason)
    missing = [
        {**row, key: _variant(["", "n/a" if dataset == "locations" else " "], i)}
        for i, row in enumerate(rows[per_reason : 2 * per_reason])
    ]
    _reject(expected, "missing_key", per_reason)
    conflicting = []
    for i, row in enumerate(rows[2 * per_reason : 3 * per_reason]):
        first = {**row, key: fresh[per_reason + i]}
        second = dict(first)
        changed = next(c for c in columns if c != key and first[c] is not None)
        second[changed] = (first[changed] or "") + " (conflicting copy)"
        conflicting += [first, second]
    _reject(expected, "conflicting_key", 2 * per_reason)
    duplicates = rows[3 * per_reason :]
    expected["input_rows"] += per_reason
    expected["deduplicated_rows"] += per_reason
    extra = pa.Table.from_pylist(missing + conflicting + duplicates, schema=table.schema)
    combined = pa.concat_tables([table, extra])
    return Written(combined.take(pa.array(rng.permutation(combined.num_rows))), malformed, expected)


# ---------------------------------------------------------------- writing


# Opened without following a link: a link where the generator writes is an error (ELOOP).
_NO_LINK = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_FOLDER = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NO_LINK


def _out_fd(out: Path) -> int:
    """``out``, made if missing and opened: the user named it, so it may be a link."""
    out.mkdir(parents=True, exist_ok=True)
    return os.open(out, _FOLDER & ~getattr(os, "O_NOFOLLOW", 0))


def _folder_fd(parent: int, name: str, shown: Path) -> int:
    """The folder ``name`` in the folder open as ``parent``, made if missing and opened
    without following a link."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, dir_fd=parent)
    try:
        return os.open(name, _FOLDER, dir_fd=parent)
    except OSError as error:
        if os.path.islink(shown) or not os.path.isdir(shown):
            raise _not_its_own(shown) from error
        raise


def _not_its_own(path: Path) -> UsageError:
    return UsageError(
        f"{path} is a link, or not a file of the generator's own: it writes nothing through "
        "a link; remove it or choose a new or empty folder"
    )


def _open_own(folder: int, name: str, shown: Path) -> BinaryIO:
    """The file ``name`` in the folder open as ``folder``, emptied for writing: never through
    a link, and never a file that has another name too (a hard link to a user's file).
    Opened non-blocking, so that a FIFO there is an error, not a wait for a reader."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | _NO_LINK
    try:
        fd = os.open(name, flags, 0o666, dir_fd=folder)
    except OSError as error:
        if os.path.islink(shown) or (os.path.exists(shown) and not os.path.isfile(shown)):
            raise _not_its_own(shown) from error
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise _not_its_own(shown)
        os.set_blocking(fd, True)
        os.ftruncate(fd, 0)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def write_dataset(out: Path, dataset: str, written: Written) -> Path:
    """Write ``out/<dataset>/<dataset>.csv`` (the folder is checked by ``check_out`` first),
    following no link below ``out``."""
    path = out / dataset / f"{dataset}.csv"
    table = written.table.select(column_names(dataset))
    root = _out_fd(out)
    try:
        folder = _folder_fd(root, dataset, out / dataset)
    finally:
        os.close(root)
    try:
        with _open_own(folder, path.name, path) as handle:
            pacsv.write_csv(table, handle, pacsv.WriteOptions(quoting_style="needed"))
            handle.write("".join(written.malformed_lines).encode("utf-8"))
    finally:
        os.close(folder)
    return path


def _write_manifest(out: Path, manifest: dict) -> None:
    root = _out_fd(out)
    try:
        with _open_own(root, MANIFEST, out / MANIFEST) as handle:
            handle.write((json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    finally:
        os.close(root)


# Rows each defect of a dimension takes from its clean rows (``add_dimension_defects``):
# a malformed line, a missing key, two conflicting rows, a duplicate source.
DIMENSION_ROWS_PER_DEFECT = 4


def defects_by_dataset(sizes: Sizes, defect_rate: float) -> dict[str, int]:
    """Defective rows per rejection reason of each dataset: dimensions get a boosted rate
    (``DIMENSION_DEFECT_BOOST``, three times more for the 300 locations)."""
    boost = {
        "locations": DIMENSION_DEFECT_BOOST * 3,
        "vehicles": DIMENSION_DEFECT_BOOST,
        "users": DIMENSION_DEFECT_BOOST,
        "rental_transactions": 1,
    }
    return {n: defects_per_reason(sizes.of(n), defect_rate * boost[n]) for n in DATASETS}


def _check_room(sizes: Sizes, per_reason: dict[str, int], defect_rate: float) -> None:
    """Every defect is made from a distinct clean row: a rate that needs more rows than a
    dataset has is an error naming the dataset, not a failure deep inside numpy."""
    damaged = [r for r in REASONS["rental_transactions"] if r not in TRANSACTION_UNDAMAGED]
    for name in ("rental_transactions", *DIMENSIONS):  # first the rows the user asked for
        available = sizes.of(name)
        taken = len(damaged) + 3 if name == "rental_transactions" else DIMENSION_ROWS_PER_DEFECT
        needed = per_reason[name] * taken
        if needed > available:
            # one defect per reason is the floor: then only more rows help, else a lower rate
            remedy = "generate more transactions" if per_reason[name] == 1 else "lower the rate"
            raise UsageError(
                f"a defect rate of {defect_rate} needs {needed:,} clean {name} rows to damage "
                f"but {sizes.transactions:,} transactions make {available:,}; {remedy}"
            )


def generated_files(out: Path) -> set[Path]:
    """What ``generate`` writes under ``out``: the manifest and one CSV per dataset."""
    return {out / MANIFEST, *(out / name / f"{name}.csv" for name in DATASETS)}


def check_out(out: Path) -> None:
    """Refuse an ``out`` folder that holds anything the generator did not write.

    A new or empty folder is fine, and so is one a previous ``generate`` wrote (its manifest
    is there) holding nothing but those files: they are replaced. Anything else (a user's raw
    folder, a generated one with files added) is a UsageError naming a file found, before
    anything is written: the generator never deletes or mixes with files it did not make.
    So is any symbolic link inside ``out`` (``users/`` or ``users/users.csv`` made a link to a
    user's files): the generator would write through it. ``out`` itself may be a link.
    """
    if not out.is_dir():
        return
    links = sorted(
        Path(top, name)
        for top, folders, files in os.walk(out)
        for name in folders + files
        if os.path.islink(os.path.join(top, name))
    )
    if links:
        raise UsageError(
            f"--out {out} holds a symbolic link, {links[0]}: the generator writes nothing "
            "through a link; remove it or choose a new or empty folder"
        )
    found = {path for path in out.rglob("*") if not path.is_dir()}
    if not found:
        return
    expected = generated_files(out)
    if (out / MANIFEST) in found:
        found -= expected
        folders = {out, *(out / name for name in DATASETS)}
        found |= {p for p in out.rglob("*") if p.is_dir() and p not in folders}
        if not found:
            return
    raise UsageError(
        f"--out {out} holds files the generator did not write (such as {min(found)}); "
        "choose a new or empty folder"
    )


def defects_per_reason(rows: int, defect_rate: float) -> int:
    return 0 if defect_rate <= 0 else max(1, round(rows * defect_rate))


def generate(out: Path | str, transactions: int, seed: int = 42, defect_rate: float = 0.0) -> dict:
    """Write the four raw datasets under ``out/<dataset>/`` and return the manifest.

    Parameters
    ----------
    out: folder that becomes the raw zone (``out/locations/locations.csv``…): new, empty or
        written by an earlier ``generate`` and holding only its files (``check_out``).
    transactions: clean rental rows before defects are added.
    seed: the same seed writes the same bytes.
    defect_rate: share of rows per rejection reason (0.0003 → ~6 per reason at 20,000).

    Returns
    -------
    The manifest (also written to ``out/generation_manifest.json``): sizes and, per dataset,
    the input/valid/rejected/deduplicated counts and rejected rows per reason to expect.
    """
    out = Path(out)
    if transactions < 0:
        raise UsageError(f"transactions must be 0 or more, not {transactions}")
    if not 0.0 <= defect_rate <= 1.0:
        raise UsageError(f"the defect rate must be between 0 and 1, not {defect_rate}")
    check_out(out)
    rng = np.random.default_rng(seed)
    sizes = Sizes.for_transactions(transactions)
    per_reason = defects_by_dataset(sizes, defect_rate)
    _check_room(sizes, per_reason, defect_rate)
    locations = make_locations(rng, sizes.locations)
    vehicles, vehicle_types = make_vehicles(rng, sizes.vehicles)
    users = make_users(rng, sizes.users)
    rentals = make_transactions(rng, sizes, vehicle_types, users, vehicles)
    written = {
        "locations": add_dimension_defects(
            rng,
            "locations",
            locations,
            "location_id",
            per_reason["locations"],
        ),
        "vehicles": add_dimension_defects(
            rng,
            "vehicles",
            vehicles,
            "vehicle_id",
            per_reason["vehicles"],
        ),
        "users": add_dimension_defects(
            rng,
            "users",
            users,
            "user_id",
            per_reason["users"],
        ),
        "rental_transactions": add_transaction_defects(
            rng, rentals, per_reason["rental_transactions"], sizes.locations
        ),
    }
    manifest = {
        "seed": seed,
        "transactions": transactions,
        "defect_rate": defect_rate,
        "sizes": sizes.__dict__,
        "datasets": {name: written[name].expected for name in DATASETS},
        "files": {
            name: str(write_dataset(out, name, written[name]).relative_to(out)) for name in DATASETS
        },
    }
    _write_manifest(out, manifest)
    return manifest
