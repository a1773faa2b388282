"""Defects, each built to fail exactly the reason it was made for, and counted: a dimension's
defective rows use fresh keys no rental references, and transaction defects are disjoint."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rental_kpis.devtools.datagen._shape import Sizes
from rental_kpis.errors import UsageError
from rental_kpis.layout import DATASETS, DIMENSIONS
from rental_kpis.spark.schemas import REASONS

# Dimensions are small: their defect rate is scaled up so that each reason shows up a few times.
DIMENSION_DEFECT_BOOST = 10


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


def check_room(sizes: Sizes, per_reason: dict[str, int], defect_rate: float) -> None:
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


def defects_per_reason(rows: int, defect_rate: float) -> int:
    return 0 if defect_rate <= 0 else max(1, round(rows * defect_rate))
