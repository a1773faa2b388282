"""SPEC §4 as pure functions: curated DataFrames in, one KPI table out, columns in SPEC order.

Two choices make the tables identical from run to run whatever the partitioning:
- money is summed exactly (``decimal(38,10)``, then back to double), because a double sum
  depends on the order Spark happens to add rows in;
- hours are summed as integer seconds and divided once.
So a re-run gives bit-identical tables, and ``spend_rank`` can rank the few distinct totals
instead of sorting every user in one partition.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from rental_kpis.spark.schemas import MONEY_SUM_TYPE

SECONDS_PER_HOUR = 3600.0

LOCATION_PERFORMANCE_COLUMNS = (
    "location_id", "location_name", "city", "state", "total_revenue", "transaction_count",
    "avg_transaction_amount", "min_transaction_amount", "max_transaction_amount",
    "unique_vehicles", "unique_users", "avg_rental_hours", "dropoff_count",
)  # fmt: skip
VEHICLE_TYPE_PERFORMANCE_COLUMNS = (
    "vehicle_type", "fleet_size", "rental_count", "total_revenue", "avg_revenue_per_rental",
    "total_rental_hours", "avg_rental_hours", "min_rental_hours", "max_rental_hours",
    "unique_vehicles_rented", "utilization_rate",
)  # fmt: skip
USER_METRICS_COLUMNS = (
    "user_id", "first_name", "last_name", "rental_count", "total_spent", "avg_spent_per_rental",
    "min_spent", "max_spent", "total_rental_hours", "avg_rental_hours", "first_rental_start",
    "last_rental_start", "spend_rank",
)  # fmt: skip
DAILY_METRICS_COLUMNS = (
    "rental_date", "transaction_count", "total_revenue", "avg_transaction_amount",
    "min_transaction_amount", "max_transaction_amount", "unique_users", "unique_vehicles",
    "total_rental_hours", "year", "month",
)  # fmt: skip
# The Hive partition columns of each processed table (SPEC §4: daily_metrics by year, month).
PARTITIONS: dict[str, list[str]] = {"daily_metrics": ["year", "month"]}


# ---------------------------------------------------------------- column helpers


def rental_seconds() -> Column:
    """Whole seconds between start and end (epoch arithmetic: no DST shift, ever)."""
    return F.col("rental_end_time").cast("long") - F.col("rental_start_time").cast("long")


def with_rental_seconds(transactions: DataFrame) -> DataFrame:
    """Add ``_seconds``, the rental's whole seconds (``rental_seconds``)."""
    return transactions.withColumn("_seconds", rental_seconds())


def exact_sum(col: str, of_partials: bool = False, name: str | None = None) -> Column:
    """A money sum that does not depend on row order; 0.0 over no rows is left to the caller.

    A sum beyond ``MONEY_SUM_TYPE`` fails the job with a message naming the column: Spark
    would return null for it, and the money would silently drop out of the table. With
    ``of_partials``, ``col`` holds ``partial_sum`` values: a null one is a group's sum that
    overflowed, and fails the job too. ``name`` is the money column the message names.
    """
    amounts = F.col(col).cast(MONEY_SUM_TYPE)
    total = F.sum(amounts)
    overflowed = total.isNull() & (F.count(amounts) > 0)
    if of_partials:
        overflowed = overflowed | (F.count_if(amounts.isNull()) > 0)
    message = (
        f"{name or col} sums to more than {MONEY_SUM_TYPE} holds; the KPI tables cannot be exact"
    )
    return F.when(overflowed, F.raise_error(F.lit(message))).otherwise(total).cast("double")


def partial_sum(col: str) -> Column:
    """The exact sum of a group's amounts, kept in ``MONEY_SUM_TYPE`` (null if it overflows)
    for a later ``exact_sum(..., of_partials=True)`` over several groups."""
    return F.sum(F.col(col).cast(MONEY_SUM_TYPE))


def hours(seconds: Column) -> Column:
    """Seconds as hours (SPEC §4: ``/ 3600.0``)."""
    return seconds / SECONDS_PER_HOUR


def zero_if_null(col: str, kind: str = "bigint") -> Column:
    """SPEC §4: counts and sums over no rows are 0."""
    return F.coalesce(F.col(col), F.lit(0).cast(kind)).cast(kind).alias(col)


def _money_aggregates(prefix: str = "") -> list[Column]:
    return [
        F.count(F.lit(1)).alias(f"{prefix}count"),
        exact_sum("total_amount").alias(f"{prefix}revenue"),
        F.min("total_amount").alias(f"{prefix}min_amount"),
        F.max("total_amount").alias(f"{prefix}max_amount"),
    ]


def _average(total: str, count: str) -> Column:
    """total / count, null when count is 0 or null (an average over no rows)."""
    return F.when(F.col(count) > 0, F.col(total) / F.col(count))


# ---------------------------------------------------------------- tables


def distinct_counts(rentals: DataFrame, by: str, counted: dict[str, str]) -> DataFrame:
    """Per value of ``by`` (never null here), the number of distinct non-null values of each
    column in ``counted`` (column -> output name), as ``countDistinct`` would give.

    One small aggregation per column, joined on ``by``: Spark plans several ``countDistinct``
    in one ``agg`` as an Expand that copies every row once per distinct column. Raises
    ``ValueError`` when ``counted`` is empty.
    """
    result = None
    for column, name in counted.items():
        pairs = rentals.select(by, column).where(F.col(column).isNotNull()).distinct()
        counts = pairs.groupBy(by).agg(F.count(F.lit(1)).alias(name))
        result = counts if result is None else result.join(counts, on=by, how="full")
    if result is None:
        raise ValueError("distinct_counts needs at least one column to count")
    return result


def location_performance(transactions: DataFrame, locations: DataFrame) -> DataFrame:
    """One row per valid location, by pickup location; dropoff_count by dropoff location."""
    rentals = with_rental_seconds(transactions).withColumnRenamed("pickup_location", "location_id")
    pickups = rentals.groupBy("location_id").agg(
        *_money_aggregates(), F.sum("_seconds").alias("_seconds")
    )
    unique = distinct_counts(
        rentals, "location_id", {"vehicle_id": "unique_vehicles", "user_id": "unique_users"}
    )
    dropoffs = transactions.groupBy(F.col("dropoff_location").alias("location_id")).agg(
        F.count(F.lit(1)).alias("dropoff_count")
    )
    joined = (
        locations.select("location_id", "location_name", "city", "state")
        .join(pickups, on="location_id", how="left")
        .join(unique, on="location_id", how="left")
        .join(dropoffs, on="location_id", how="left")
    )
    return joined.select(
        "location_id",
        "location_name",
        "city",
        "state",
        F.coalesce(F.col("revenue"), F.lit(0.0)).alias("total_revenue"),
        zero_if_null("count").alias("transaction_count"),
        _average("revenue", "count").alias("avg_transaction_amount"),
        F.col("min_amount").alias("min_transaction_amount"),
        F.col("max_amount").alias("max_transaction_amount"),
        zero_if_null("unique_vehicles"),
        zero_if_null("unique_users"),
        hours(_average("_seconds", "count")).alias("avg_rental_hours"),
        zero_if_null("dropoff_count"),
    )


def period_hours(transactions: DataFrame) -> DataFrame:
    """One row: hours from the first start to the last end of all valid rentals (null if none)."""
    return transactions.agg(
        hours(
            F.max("rental_end_time").cast("long") - F.min("rental_start_time").cast("long")
        ).alias("period_hours")
    )


def vehicle_type_performance(transactions: DataFrame, vehicles: DataFrame) -> DataFrame:
    """One row per vehicle_type among valid vehicles, with utilization over the whole period.

    The rentals are aggregated per vehicle first (a partial aggregation on each core, then a
    shuffle of one row per vehicle), and only those rows are joined to the vehicles and
    summed per type: no shuffle of every rental for the join, and ``unique_vehicles_rented``
    is a count of rows. Exact all the same: money partials stay decimal (``partial_sum``).
    """
    fleet = vehicles.groupBy("vehicle_type").agg(F.count(F.lit(1)).alias("fleet_size"))
    per_vehicle = (
        with_rental_seconds(transactions)
        .groupBy("vehicle_id")
        .agg(
            F.count(F.lit(1)).alias("_count"),
            partial_sum("total_amount").alias("_revenue"),
            F.sum("_seconds").alias("_seconds"),
            F.min("_seconds").alias("_min_seconds"),
            F.max("_seconds").alias("_max_seconds"),
        )
        .join(
            vehicles.select("vehicle_id", F.col("vehicle_type").alias("_type")),
            on="vehicle_id",
            how="inner",
        )
    )
    by_type = per_vehicle.groupBy("_type").agg(
        F.sum("_count").alias("count"),
        exact_sum("_revenue", of_partials=True, name="total_amount").alias("revenue"),
        F.sum("_seconds").alias("_seconds"),
        F.min("_min_seconds").alias("_min_seconds"),
        F.max("_max_seconds").alias("_max_seconds"),
        F.count(F.lit(1)).alias("unique_vehicles_rented"),
    )
    joined = fleet.join(
        by_type, fleet["vehicle_type"].eqNullSafe(by_type["_type"]), how="left"
    ).crossJoin(F.broadcast(period_hours(transactions)))
    total_hours = hours(F.coalesce(F.col("_seconds"), F.lit(0)))
    return joined.select(
        "vehicle_type",
        F.col("fleet_size").cast("bigint").alias("fleet_size"),
        zero_if_null("count").alias("rental_count"),
        F.coalesce(F.col("revenue"), F.lit(0.0)).alias("total_revenue"),
        _average("revenue", "count").alias("avg_revenue_per_rental"),
        total_hours.alias("total_rental_hours"),
        hours(_average("_seconds", "count")).alias("avg_rental_hours"),
        hours(F.col("_min_seconds")).alias("min_rental_hours"),
        hours(F.col("_max_seconds")).alias("max_rental_hours"),
        zero_if_null("unique_vehicles_rented"),
        (total_hours / (F.col("fleet_size") * F.col("period_hours"))).alias("utilization_rate"),
    )


def with_dense_rank_desc(df: DataFrame, value: str, rank: str) -> DataFrame:
    """Dense rank by ``value``, highest = 1, computed over the distinct values only.

    A window ordered over the whole frame runs in one partition; the distinct totals are
    few (amounts are prices × hours), so ranking them and joining back scales.
    """
    ranks = (
        df.select(value)
        .distinct()
        .withColumn(rank, F.row_number().over(Window.orderBy(F.col(value).desc())))
    )
    return df.join(F.broadcast(ranks), on=value, how="left")


def user_metrics(transactions: DataFrame, users: DataFrame) -> DataFrame:
    """One row per user with at least one valid rental; no email or phone (SPEC §4)."""
    per_user = (
        with_rental_seconds(transactions)
        .groupBy("user_id")
        .agg(
            *_money_aggregates(),
            F.sum("_seconds").alias("_seconds"),
            F.min("rental_start_time").alias("first_rental_start"),
            F.max("rental_start_time").alias("last_rental_start"),
        )
        .withColumnRenamed("revenue", "total_spent")
    )
    ranked = with_dense_rank_desc(per_user, "total_spent", "spend_rank")
    named = ranked.join(users.select("user_id", "first_name", "last_name"), "user_id", "left")
    return named.select(
        "user_id",
        "first_name",
        "last_name",
        F.col("count").alias("rental_count"),
        "total_spent",
        _average("total_spent", "count").alias("avg_spent_per_rental"),
        F.col("min_amount").alias("min_spent"),
        F.col("max_amount").alias("max_spent"),
        hours(F.col("_seconds")).alias("total_rental_hours"),
        hours(_average("_seconds", "count")).alias("avg_rental_hours"),
        "first_rental_start",
        "last_rental_start",
        F.col("spend_rank").cast("int").alias("spend_rank"),
    )


def daily_metrics(transactions: DataFrame) -> DataFrame:
    """One row per UTC date of rental_start_time, with ``year`` and ``month`` to partition by."""
    rentals = with_rental_seconds(transactions).withColumn(
        "rental_date", F.to_date("rental_start_time")
    )
    per_day = (
        rentals.groupBy("rental_date")
        .agg(*_money_aggregates(), F.sum("_seconds").alias("_seconds"))
        .join(
            distinct_counts(
                rentals, "rental_date", {"user_id": "unique_users", "vehicle_id": "unique_vehicles"}
            ),
            on="rental_date",
            how="left",
        )
    )
    return per_day.select(
        "rental_date",
        F.col("count").alias("transaction_count"),
        F.col("revenue").alias("total_revenue"),
        _average("revenue", "count").alias("avg_transaction_amount"),
        F.col("min_amount").alias("min_transaction_amount"),
        F.col("max_amount").alias("max_transaction_amount"),
        zero_if_null("unique_users"),
        zero_if_null("unique_vehicles"),
        hours(F.col("_seconds")).alias("total_rental_hours"),
        F.year("rental_date").alias("year"),
        F.month("rental_date").alias("month"),
    )
