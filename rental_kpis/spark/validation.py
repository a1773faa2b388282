"""SPEC §3 as pure functions: raw string rows in, flagged rows out.

A *flagged* DataFrame holds one row per distinct raw row with
- the raw columns as strings (what ``rejected/`` keeps),
- ``_copies``: how many identical raw rows collapsed into it (exact duplicates),
- ``t_<column>``: the parsed, typed value (what ``curated/`` keeps),
- ``rejection_reason``: the first failing reason, or null for a valid row.

Flagging is two steps, each a ``DataFrame -> DataFrame`` function: ``collapse_duplicates``
(exact duplicates, and how many distinct rows share a key), then ``with_dimension_reason`` or
``with_transaction_reason`` (the checks, first failing reason wins); ``flag_dimension`` and
``flag_transactions`` chain the two. Splitting a flagged frame into curated rows, rejected rows
and counts is done by ``curated_rows``, ``rejected_rows`` and ``summarise``.

Order of operations, a decision SPEC leaves open: exact duplicates collapse first (they are
the same input line twice), then each distinct row is checked. So a duplicated bad row counts
as one rejected row plus one deduplicated row.

Nothing here decides how Spark runs the work: ``spark/execution.py`` does, and gives the same
rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from pyspark.sql import Column, DataFrame, Row, Window
from pyspark.sql import functions as F

from rental_kpis.spark.schemas import (
    CONFLICTING_KEY,
    DIMENSION_KEYS,
    ISO_DATE,
    ISO_TIMESTAMP,
    MALFORMED_ROW,
    MISSING_KEY,
    MONEY_SUM_TYPE,
    RAW_COLUMNS,
    REASONS,
    REJECTION_REASON,
    REQUIRED_TRANSACTION_COLUMNS,
    column_names,
)
from rental_kpis.summaries import DatasetCounts

CORRUPT_RECORD = "_corrupt_record"
COPIES = "_copies"
SUSPECT = "_suspect"  # readers.read_raw(text="utf-8"): a record that may hide an invalid byte
RAW_LINE = "raw_line"

_INT_TEXT = r"^\s*[+-]?\d{1,10}\s*$"
# Plain decimal notation only: NaN, Infinity, hex floats and Java's 1.5d suffix do not parse.
_DOUBLE_TEXT = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
_ISO_TIMESTAMP_TEXT = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
_ISO_DATE_TEXT = r"^\d{4}-\d{2}-\d{2}$"


def typed(name: str) -> str:
    """Name of the parsed value of raw column ``name`` inside a flagged frame."""
    return f"t_{name}"


# ---------------------------------------------------------------- column parsers


def is_blank(col: Column) -> Column:
    """Null, empty or only white space: a missing value."""
    return col.isNull() | (F.trim(col) == "")


def parse_int(col: Column) -> Column:
    """An integer written in plain digits; anything else (1.5, 1e3, overflow) is null."""
    return F.when(col.rlike(_INT_TEXT), F.trim(col).cast("int"))


def parse_double(col: Column) -> Column:
    """A finite decimal number; NaN, ±Infinity (also ``1e309``, which a double rounds to
    Infinity) and non-numbers are null."""
    value = F.trim(col).cast("double")
    return F.when(col.rlike(_DOUBLE_TEXT) & (F.abs(value) < F.lit(float("inf"))), value)


def parse_money(col: Column) -> Column:
    """An amount that the tables hold exactly, else null (SPEC §3: unparseable).

    Curated money is a double and KPI sums run in ``MONEY_SUM_TYPE``: the text read as that
    decimal, the double, and the double as that decimal must be one number. This rejects
    amounts of 10**28 and more (the decimal cast would overflow to null and the amount drop
    out of every sum), more than 10 decimal places, and more digits than a double keeps.
    """
    value = parse_double(col)
    held = value.cast(MONEY_SUM_TYPE)
    exact = F.trim(col).cast(MONEY_SUM_TYPE)
    return F.when((held.cast("double") == value) & (exact == held), value)


def parse_timestamp(col: Column, fmt: str) -> Column:
    """A zone-less timestamp read in the session zone (UTC); impossible calendar values are null.

    The ISO pattern uses a cast (Spark's fast hand-written parser) behind a strict shape
    check; other patterns use ``to_timestamp``, which the CORRECTED parser policy turns
    into null on failure.
    """
    if fmt == ISO_TIMESTAMP:
        return F.when(col.rlike(_ISO_TIMESTAMP_TEXT), col.cast("timestamp"))
    return F.to_timestamp(col, fmt)


def parse_date(col: Column, fmt: str) -> Column:
    """A date in pattern ``fmt``; impossible calendar values are null (as ``parse_timestamp``)."""
    if fmt == ISO_DATE:
        return F.when(col.rlike(_ISO_DATE_TEXT), col.cast("date"))
    return F.to_date(col, fmt)


def parse_value(dataset: str, name: str) -> Column:
    """The typed value of one raw column, following SPEC §1."""
    column = next(c for c in RAW_COLUMNS[dataset] if c.name == name)
    raw = F.col(name)
    if column.kind == "int":
        return parse_int(raw)
    if column.kind == "double":
        return parse_double(raw)
    if column.kind == "money":
        return parse_money(raw)
    if column.kind == "timestamp":
        return parse_timestamp(raw, column.fmt or ISO_TIMESTAMP)
    if column.kind == "date":
        return parse_date(raw, column.fmt or ISO_DATE)
    return F.when(~is_blank(raw), raw)


def first_failing(checks: Iterable[tuple[str, Column]]) -> Column:
    """The name of the first check whose condition is true, else null (first reason wins)."""
    checks = list(checks)
    reason, failed = checks[0]
    chain = F.when(failed, F.lit(reason))
    for reason, failed in checks[1:]:
        chain = chain.when(failed, F.lit(reason))
    return chain.otherwise(F.lit(None).cast("string"))


# ---------------------------------------------------------------- flagged frames


KEY = "_key"
KEY_ROWS = "_key_rows"
ELIGIBLE = "_eligible"
# The column whose parsed value identifies a row of each dataset: de-duplication and the
# conflicting-key check group by it.
ROW_KEYS: dict[str, str] = {**DIMENSION_KEYS, "rental_transactions": "rental_id"}


def parsed_key(dataset: str) -> Column:
    """The parsed key of a raw row of ``dataset`` (null when missing or unparseable)."""
    return parse_value(dataset, ROW_KEYS[dataset])


def with_row_key(raw: DataFrame, dataset: str) -> DataFrame:
    """Add ``_key`` (the parsed key) and ``_eligible``: the row is well formed and has a key,
    so it counts among the rows sharing that key (a malformed row never makes a conflict)."""
    key = parsed_key(dataset)
    eligible = F.col(CORRUPT_RECORD).isNull() & key.isNotNull()
    return raw.select("*", key.alias(KEY), eligible.alias(ELIGIBLE))


def collapse_keyed(keyed: DataFrame) -> DataFrame:
    """One row per distinct row of ``with_row_key``'s output: the raw columns, ``_key``,
    ``_copies`` (identical raw rows collapsed into it) and ``_key_rows`` (distinct eligible
    rows sharing its key)."""
    columns = [c for c in keyed.columns if c not in (KEY, ELIGIBLE)]
    distinct = keyed.groupBy(*columns, KEY, ELIGIBLE).agg(F.count(F.lit(1)).alias(COPIES))
    per_key = Window.partitionBy(KEY)
    key_rows = F.sum(F.when(F.col(ELIGIBLE), 1).otherwise(0)).over(per_key).cast("long")
    return distinct.select(*columns, KEY, COPIES, key_rows.alias(KEY_ROWS))


def collapse_duplicates(raw: DataFrame, dataset: str) -> DataFrame:
    """Exact duplicate rows collapsed into one, each with its ``_copies`` and ``_key_rows``
    (what ``with_dimension_reason`` and ``with_transaction_reason`` take)."""
    return collapse_keyed(with_row_key(raw, dataset))


def with_typed_columns(df: DataFrame, dataset: str) -> DataFrame:
    """Add ``t_<column>``, the parsed value of every SPEC column of ``dataset``."""
    return df.select(
        "*", *(parse_value(dataset, name).alias(typed(name)) for name in column_names(dataset))
    )


def with_dimension_reason(collapsed: DataFrame, dataset: str) -> DataFrame:
    """Add the typed columns and the first failing reason of a dimension's collapsed rows
    (SPEC §3, dimensions): malformed, missing key, conflicting key."""
    rows = with_typed_columns(collapsed, dataset)
    reason = first_failing(
        [
            (MALFORMED_ROW, F.col(CORRUPT_RECORD).isNotNull()),
            (MISSING_KEY, F.col(typed(DIMENSION_KEYS[dataset])).isNull()),
            (CONFLICTING_KEY, F.col(KEY_ROWS) > 1),
        ]
    )
    return rows.withColumn(REJECTION_REASON, reason).drop(KEY_ROWS, KEY)


def flag_dimension(raw: DataFrame, dataset: str) -> DataFrame:
    """Flag a dimension's raw rows (SPEC §3, dimensions).

    Parameters: ``raw``, rows as ``readers.read_raw`` gives them; ``dataset``, one of the
    dimensions. Returns the flagged frame (module docstring).
    """
    return with_dimension_reason(collapse_duplicates(raw, dataset), dataset)


def valid_keys(flagged: DataFrame, dataset: str) -> DataFrame:
    """The distinct valid keys of a flagged dimension, as a one-column frame named ``key``."""
    key = typed(DIMENSION_KEYS[dataset])
    return flagged.where(F.col(REJECTION_REASON).isNull()).select(F.col(key).alias("key"))


def _with_known(df: DataFrame, on: str, keys: DataFrame, flag: str) -> DataFrame:
    """Add ``flag``: true when the value of ``on`` is among ``keys``, else null (a left join,
    never a filter: every row stays)."""
    marked = keys.select(F.col("key").alias(f"_{flag}_key"), F.lit(True).alias(flag))
    joined = df.join(marked, F.col(on) == F.col(f"_{flag}_key"), how="left")
    return joined.drop(f"_{flag}_key")


def with_transaction_reason(
    collapsed: DataFrame,
    user_keys: DataFrame,
    vehicle_keys: DataFrame,
    location_keys: DataFrame,
) -> DataFrame:
    """Add the typed columns and the first failing reason of SPEC §3 (items 1–7) to the
    collapsed rental transactions; ``*_keys`` as in ``flag_transactions``."""
    rows = with_typed_columns(collapsed, "rental_transactions")
    rows = _with_known(rows, typed("user_id"), user_keys, "_user_known")
    rows = _with_known(rows, typed("vehicle_id"), vehicle_keys, "_vehicle_known")
    rows = _with_known(rows, typed("pickup_location"), location_keys, "_pickup_known")
    rows = _with_known(rows, typed("dropoff_location"), location_keys, "_dropoff_known")

    start, end = F.col(typed("rental_start_time")), F.col(typed("rental_end_time"))
    checks: dict[str, Column] = {
        MALFORMED_ROW: F.col(CORRUPT_RECORD).isNotNull(),
        "missing_rental_id": F.col(typed("rental_id")).isNull(),
        **{f"unparseable_{c}": F.col(typed(c)).isNull() for c in REQUIRED_TRANSACTION_COLUMNS},
        "non_positive_duration": end <= start,
        "negative_amount": F.col(typed("total_amount")) < 0,
        "unknown_user": F.col("_user_known").isNull(),
        "unknown_vehicle": F.col("_vehicle_known").isNull(),
        "unknown_pickup_location": F.col("_pickup_known").isNull(),
        "unknown_dropoff_location": F.col("_dropoff_known").isNull(),
        "conflicting_rental_id": F.col(KEY_ROWS) > 1,
    }
    helpers = [KEY, KEY_ROWS, "_user_known", "_vehicle_known", "_pickup_known", "_dropoff_known"]
    ordered = in_reason_order(checks, "rental_transactions")
    return rows.withColumn(REJECTION_REASON, first_failing(ordered)).drop(*helpers)


def flag_transactions(
    raw: DataFrame,
    user_keys: DataFrame,
    vehicle_keys: DataFrame,
    location_keys: DataFrame,
) -> DataFrame:
    """Flag rental transactions with the first failing reason of SPEC §3 (items 1–7).

    Parameters: ``raw``, rows as ``readers.read_raw`` gives them; ``*_keys``, the VALID keys
    of each dimension (``valid_keys``): a rental of a rejected vehicle is
    ``unknown_vehicle``. Returns the flagged frame (module docstring).
    """
    return with_transaction_reason(
        collapse_duplicates(raw, "rental_transactions"), user_keys, vehicle_keys, location_keys
    )


def in_reason_order(checks: dict[str, Column], dataset: str) -> list[tuple[str, Column]]:
    """The checks in SPEC §3's order, which ``schemas.REASONS`` holds (the one home of it):
    a reason without a check, or a check without a reason, is a bug caught here."""
    if set(checks) != set(REASONS[dataset]):
        unknown = sorted(set(checks) ^ set(REASONS[dataset]))
        raise ValueError(f"checks and SPEC §3 reasons of {dataset} differ: {unknown}")
    return [(reason, checks[reason]) for reason in REASONS[dataset]]


# ---------------------------------------------------------------- splitting a flagged frame


def curated_rows(flagged: DataFrame, dataset: str) -> DataFrame:
    """Valid rows, typed, with SPEC's column names in SPEC's order."""
    return flagged.where(F.col(REJECTION_REASON).isNull()).select(
        *(F.col(typed(name)).alias(name) for name in column_names(dataset))
    )


def rejected_rows(flagged: DataFrame, dataset: str) -> DataFrame:
    """Rejected rows as raw strings plus the reason, and the raw line of a malformed row."""
    return flagged.where(F.col(REJECTION_REASON).isNotNull()).select(
        *column_names(dataset),
        REJECTION_REASON,
        F.col(CORRUPT_RECORD).alias(RAW_LINE),
    )


def _reason_alias(reason: str | None) -> str:
    return f"rows_{reason or 'valid'}"


def count_columns(dataset: str) -> list[Column]:
    """The aggregates of a flagged frame that ``counts_from`` turns into a DatasetCounts:
    distinct rows per reason (and valid), and raw rows in all."""
    reason = F.col(REJECTION_REASON)
    return [
        F.sum(COPIES).alias("input_rows"),
        F.count(F.lit(1)).alias("distinct_rows"),
        F.count_if(reason.isNull()).alias(_reason_alias(None)),
        *(F.count_if(reason == r).alias(_reason_alias(r)) for r in REASONS[dataset]),
    ]


def counts_from(dataset: str, metrics: dict) -> DatasetCounts:
    """Row accounting from the values of ``count_columns`` (every reason listed, zeros too)."""
    by_reason = {r: int(metrics[_reason_alias(r)] or 0) for r in REASONS[dataset]}
    distinct = int(metrics["distinct_rows"] or 0)
    return DatasetCounts(
        input_rows=int(metrics["input_rows"] or 0),
        valid_rows=int(metrics[_reason_alias(None)] or 0),
        rejected_rows=sum(by_reason.values()),
        deduplicated_rows=int(metrics["input_rows"] or 0) - distinct,
        rejected_by_reason=by_reason,
    )


def summarise(flagged: DataFrame, dataset: str) -> DatasetCounts:
    """Count rows per reason in one small aggregation (every reason listed, zeros included)."""
    row = cast(Row, flagged.agg(*count_columns(dataset)).first())  # no groups: always one row
    return counts_from(dataset, row.asDict())


def flag_all(raw: dict[str, DataFrame]) -> dict[str, DataFrame]:
    """Flag the four datasets; transactions are checked against the dimensions' valid keys.

    Parameters: ``raw``, dataset name -> rows as ``readers.read_raw`` gives them. Returns
    dataset name -> flagged frame, each computed anew by every action on it.
    """
    flagged = {name: flag_dimension(raw[name], name) for name in DIMENSION_KEYS}
    flagged["rental_transactions"] = flag_transactions(
        raw["rental_transactions"],
        user_keys=valid_keys(flagged["users"], "users"),
        vehicle_keys=valid_keys(flagged["vehicles"], "vehicles"),
        location_keys=valid_keys(flagged["locations"], "locations"),
    )
    return flagged


__all__ = [
    "DatasetCounts",
    "collapse_duplicates",
    "count_columns",
    "counts_from",
    "curated_rows",
    "first_failing",
    "flag_all",
    "flag_dimension",
    "flag_transactions",
    "rejected_rows",
    "summarise",
    "valid_keys",
    "with_dimension_reason",
    "with_transaction_reason",
]
