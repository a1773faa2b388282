"""The data contract of SPEC §1 and §3 as data: raw columns, their types and formats, reasons.

Raw files are read as strings (no ``inferSchema``): parsing is validation's job, so a bad
value becomes a rejected row with a reason instead of a silent null.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import types as T


@dataclass(frozen=True)
class Column:
    """One raw column: its name, the Spark type it is parsed to, and the raw text format."""

    name: str
    kind: str  # "string" | "int" | "double" | "money" | "date" | "timestamp"
    fmt: str | None = None  # datetime pattern of the raw text, for dates and timestamps

    @property
    def spark_type(self) -> T.DataType:
        return _SPARK_TYPES[self.kind]


_SPARK_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "int": T.IntegerType(),
    "double": T.DoubleType(),
    "money": T.DoubleType(),  # a double that MONEY_SUM_TYPE holds exactly (validation.parse_money)
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
}

# Money is stored as double and summed exactly in this type (kpis), so an amount is valid only
# when this type holds it exactly: below 10**28, at most 10 decimal places (SPEC §3, item 3).
MONEY_SUM_TYPE = "decimal(38,10)"

ISO_DATE = "yyyy-MM-dd"
ISO_TIMESTAMP = "yyyy-MM-dd HH:mm:ss"

RAW_COLUMNS: dict[str, tuple[Column, ...]] = {
    "locations": (
        Column("location_id", "int"),
        Column("location_name", "string"),
        Column("address", "string"),
        Column("city", "string"),
        Column("state", "string"),
        Column("zip_code", "string"),
        Column("latitude", "double"),
        Column("longitude", "double"),
    ),
    "vehicles": (
        Column("active", "int"),
        Column("vehicle_license_number", "string"),
        Column("registration_name", "string"),
        Column("license_type", "string"),
        Column("expiration_date", "date", "dd-MM-yyyy"),
        Column("permit_license_number", "string"),
        Column("certification_date", "date", ISO_DATE),
        Column("vehicle_year", "int"),
        Column("base_telephone_number", "string"),
        Column("base_address", "string"),
        Column("vehicle_id", "string"),
        Column("last_update_timestamp", "timestamp", "dd-MM-yyyy HH:mm:ss"),
        Column("brand", "string"),
        Column("vehicle_type", "string"),
    ),
    "users": (
        Column("user_id", "string"),
        Column("first_name", "string"),
        Column("last_name", "string"),
        Column("email", "string"),
        Column("phone_number", "string"),
        Column("driver_license_number", "string"),
        Column("driver_license_expiry", "date", ISO_DATE),
        Column("creation_date", "date", ISO_DATE),
        Column("is_active", "int"),
    ),
    "rental_transactions": (
        Column("rental_id", "string"),
        Column("user_id", "string"),
        Column("vehicle_id", "string"),
        Column("rental_start_time", "timestamp", ISO_TIMESTAMP),
        Column("rental_end_time", "timestamp", ISO_TIMESTAMP),
        Column("pickup_location", "int"),
        Column("dropoff_location", "int"),
        Column("total_amount", "money"),
    ),
}

# The key of each dimension (SPEC §3): null or unparseable -> missing_key.
DIMENSION_KEYS: dict[str, str] = {
    "locations": "location_id",
    "vehicles": "vehicle_id",
    "users": "user_id",
}

# Transaction columns that must parse, in the order their reasons are checked (SPEC §3 item 3).
REQUIRED_TRANSACTION_COLUMNS: tuple[str, ...] = (
    "user_id",
    "vehicle_id",
    "rental_start_time",
    "rental_end_time",
    "pickup_location",
    "dropoff_location",
    "total_amount",
)

MALFORMED_ROW = "malformed_row"
MISSING_KEY = "missing_key"
CONFLICTING_KEY = "conflicting_key"

DIMENSION_REASONS: tuple[str, ...] = (MALFORMED_ROW, MISSING_KEY, CONFLICTING_KEY)

# Every transaction reason, in the order SPEC §3 checks them: the first failing one wins.
TRANSACTION_REASONS: tuple[str, ...] = (
    MALFORMED_ROW,
    "missing_rental_id",
    *(f"unparseable_{name}" for name in REQUIRED_TRANSACTION_COLUMNS),
    "non_positive_duration",
    "negative_amount",
    "unknown_user",
    "unknown_vehicle",
    "unknown_pickup_location",
    "unknown_dropoff_location",
    "conflicting_rental_id",
)

REASONS: dict[str, tuple[str, ...]] = {
    **{name: DIMENSION_REASONS for name in DIMENSION_KEYS},
    "rental_transactions": TRANSACTION_REASONS,
}

REJECTION_REASON = "rejection_reason"


def column_names(dataset: str) -> list[str]:
    return [column.name for column in RAW_COLUMNS[dataset]]


def missing_columns(dataset: str, header: list[str]) -> list[str]:
    """SPEC §1 columns of ``dataset`` that ``header`` lacks, in SPEC order."""
    return [name for name in column_names(dataset) if name not in header]


def curated_schema(dataset: str) -> T.StructType:
    """The typed schema of ``curated/<dataset>/``: the raw columns, parsed, in SPEC order."""
    return T.StructType(
        [T.StructField(column.name, column.spark_type, True) for column in RAW_COLUMNS[dataset]]
    )
