"""What the report says, computed from the KPI tables: headline numbers, ranked views and the
one-sentence takeaway under every chart.

Pure pandas functions over frames read from the catalog (DuckDB locally, Athena on AWS), so
every sentence in the report is a function of the data and can be tested on hand-made rows.
Not used on EMR.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
from pandas.io.formats.style import Styler

from rental_kpis.summaries import DatasetCounts  # the step's own reconciliation rule

TOP_N = 10


# ---------------------------------------------------------------- formatting


def money(value: float) -> str:
    """$1,234,567 for large amounts, $12.34 below a hundred (what a reader compares)."""
    return f"${value:,.0f}" if abs(value) >= 100 else f"${value:,.2f}"


def percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def _day(value: object) -> date:
    return pd.Timestamp(value).date()


# ---------------------------------------------------------------- headline


@dataclass(frozen=True)
class Headline:
    revenue: float
    rentals: int
    active_users: int
    vehicles_rented: int
    fleet_size: int
    first_day: date
    last_day: date

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def table(self) -> pd.DataFrame:
        """The headline as the report shows it: one row per number, formatted."""
        rows = [
            ("Revenue", money(self.revenue)),
            ("Rentals", f"{self.rentals:,}"),
            ("Active users", f"{self.active_users:,}"),
            ("Vehicles rented", f"{self.vehicles_rented:,} of {self.fleet_size:,} in the fleet"),
            ("Period", f"{self.first_day} to {self.last_day} ({self.days} days)"),
        ]
        return pd.DataFrame(rows, columns=["", "value"]).set_index("")


def headline(daily: pd.DataFrame, vehicle_types: pd.DataFrame, users: pd.DataFrame) -> Headline:
    """Totals over the whole period: revenue and rentals from ``daily_metrics``, users with a
    rental from ``user_metrics``, vehicles from ``vehicle_type_performance``."""
    return Headline(
        revenue=float(daily["total_revenue"].sum()),
        rentals=int(daily["transaction_count"].sum()),
        active_users=int((users["rental_count"] > 0).sum()),
        vehicles_rented=int(vehicle_types["unique_vehicles_rented"].sum()),
        fleet_size=int(vehicle_types["fleet_size"].sum()),
        first_day=_day(daily["rental_date"].min()),
        last_day=_day(daily["rental_date"].max()),
    )


# ---------------------------------------------------------------- ranked views + takeaways


def top_locations(locations: pd.DataFrame, n: int = TOP_N) -> pd.DataFrame:
    """The ``n`` locations with the most revenue (ties by location id, as the queries order)."""
    ranked = locations.sort_values(["total_revenue", "location_id"], ascending=[False, True])
    return ranked.head(n).reset_index(drop=True)


def top_locations_takeaway(locations: pd.DataFrame, n: int = TOP_N) -> str:
    top = top_locations(locations, n)
    total = locations["total_revenue"].sum()
    leader = top.iloc[0]
    return (
        f"{leader['location_name']} ({leader['city']}) leads with {money(leader['total_revenue'])}"
        f" ({percent(leader['total_revenue'], total)} of revenue); the top {len(top)} locations"
        f" together bring {percent(top['total_revenue'].sum(), total)}"
        f" of revenue from {len(locations):,} locations."
    )


def vehicle_types_takeaway(vehicle_types: pd.DataFrame) -> str:
    by_rentals = vehicle_types.sort_values(
        ["rental_count", "vehicle_type"], ascending=[False, True]
    )
    by_use = vehicle_types.sort_values(
        ["utilization_rate", "vehicle_type"], ascending=[False, True]
    )
    most, busiest = by_rentals.iloc[0], by_use.iloc[0]
    total = vehicle_types["rental_count"].sum()
    most_text = (
        f"{most['vehicle_type']} vehicles are rented most ({most['rental_count']:,} rentals,"
        f" {percent(most['rental_count'], total)})"
    )
    use_text = f"{100 * busiest['utilization_rate']:.1f}% of the fleet's hours"
    if busiest["vehicle_type"] == most["vehicle_type"]:
        return f"{most_text} and have the highest utilization: {use_text}."
    return f"{most_text}; {busiest['vehicle_type']} has the highest utilization: {use_text}."


def daily_takeaway(trend: pd.DataFrame) -> str:
    """``trend`` is the ``daily_revenue_trend`` answer: rental_date, total_revenue, 7-day mean."""
    best = trend.sort_values(["total_revenue", "rental_date"], ascending=[False, True]).iloc[0]
    means = trend.sort_values("rental_date")["revenue_7day_mean"]
    first, last = means.iloc[min(6, len(means) - 1)], means.iloc[-1]
    change = (last - first) / first if first else 0.0
    direction = "rose" if change > 0.005 else "fell" if change < -0.005 else "held steady"
    return (
        f"Revenue averaged {money(trend['total_revenue'].mean())} a day; the best day was"
        f" {_day(best['rental_date'])} ({money(best['total_revenue'])}), and the 7-day mean"
        f" {direction} from {money(first)} to {money(last)} ({100 * change:+.1f}%)."
    )


def top_spenders_takeaway(spenders: pd.DataFrame, users: pd.DataFrame) -> str:
    """``spenders`` is the ``top_spending_users`` answer; ``users`` the whole user_metrics."""
    leader = spenders.iloc[0]
    total = users["total_spent"].sum()
    return (
        f"{leader['first_name']} {leader['last_name']} spent the most"
        f" ({money(leader['total_spent'])} over {int(leader['rental_count'])} rentals); the"
        f" top {len(spenders)} users ({percent(len(spenders), len(users))} of active users) bring"
        f" {percent(spenders['total_spent'].sum(), total)} of revenue."
    )


def spend_takeaway(users: pd.DataFrame) -> str:
    spent = users["total_spent"]
    median, p90 = spent.median(), spent.quantile(0.9)
    return (
        f"Half of the {len(users):,} active users spent under {money(median)}; the top 10%"
        f" spent over {money(p90)}, {p90 / median:.1f}x the median."
    )


def city_takeaway(cities: pd.DataFrame, n: int = 5) -> str:
    """``cities`` is the ``revenue_by_city`` answer (highest revenue first)."""
    total = cities["total_revenue"].sum()
    leader = cities.iloc[0]
    return (
        f"{leader['city']}, {leader['state']} brings the most revenue"
        f" ({money(leader['total_revenue'])}, {percent(leader['total_revenue'], total)});"
        f" the top {min(n, len(cities))} of {len(cities)} cities bring"
        f" {percent(cities['total_revenue'].head(n).sum(), total)}."
    )


# ---------------------------------------------------------------- data quality


def quality_table(validation: dict) -> pd.DataFrame:
    """Rows in and out per dataset (from the validate_raw summary) and whether they reconcile:
    every input row is valid, rejected with a reason, or an exact duplicate dropped."""

    rows = []
    for dataset, counts in validation["datasets"].items():
        rows.append(
            {
                "dataset": dataset,
                "rows in": counts["input_rows"],
                "valid": counts["valid_rows"],
                "rejected": counts["rejected_rows"],
                "exact duplicates": counts["deduplicated_rows"],
                "reconciles": DatasetCounts(**counts).reconciles,
            }
        )
    return pd.DataFrame(rows).set_index("dataset")


def rejections(validation: dict) -> pd.DataFrame:
    """One row per (dataset, reason) that occurred, most frequent first."""
    rows = [
        {"dataset": dataset, "reason": reason, "rows": n}
        for dataset, counts in validation["datasets"].items()
        for reason, n in counts["rejected_by_reason"].items()
        if n
    ]
    frame = pd.DataFrame(rows, columns=["dataset", "reason", "rows"])
    ordered = frame.sort_values(["rows", "dataset", "reason"], ascending=[False, True, True])
    return ordered.reset_index(drop=True)


def quality_takeaway(validation: dict) -> str:
    table = quality_table(validation)
    rows_in, rejected = table["rows in"].sum(), table["rejected"].sum()
    reasons = rejections(validation).groupby("reason")["rows"].sum()
    broken = [d for d, ok in table["reconciles"].items() if not ok]
    common = (
        f" the most common reason is {reasons.idxmax()} ({reasons.max():,} rows)"
        if len(reasons)
        else " no reason occurred"
    )
    closing = (
        "every dataset reconciles (in = valid + rejected + duplicates)."
        if not broken
        else f"{', '.join(broken)} do not reconcile."
    )
    return (
        f"{rejected:,} of {rows_in:,} input rows ({percent(rejected, rows_in)}) were rejected;"
        f"{common}; {closing}"
    )


# ---------------------------------------------------------------- tables as the report shows them


def _present(frame: pd.DataFrame, columns: dict[str, str], formats: dict[str, str]) -> Styler:
    """``frame``'s ``columns`` renamed for readers, numbers formatted, no index."""
    shown = frame[list(columns)].rename(columns=columns)
    return shown.style.format({columns[c]: f for c, f in formats.items()}).hide(axis="index")


def present_locations(top: pd.DataFrame) -> Styler:
    columns = {
        "location_name": "location", "city": "city", "state": "state",
        "total_revenue": "revenue (USD)", "transaction_count": "rentals",
        "avg_transaction_amount": "avg rental (USD)", "unique_users": "users",
    }  # fmt: skip
    formats = {
        "total_revenue": "{:,.2f}", "transaction_count": "{:,}",
        "avg_transaction_amount": "{:,.2f}", "unique_users": "{:,}",
    }  # fmt: skip
    return _present(top, columns, formats)


def present_vehicle_types(vehicle_types: pd.DataFrame) -> Styler:
    ordered = vehicle_types.sort_values("total_revenue", ascending=False)
    columns = {
        "vehicle_type": "vehicle type", "fleet_size": "fleet", "rental_count": "rentals",
        "total_revenue": "revenue (USD)", "avg_revenue_per_rental": "avg rental (USD)",
        "avg_rental_hours": "avg hours", "utilization_rate": "utilization",
    }  # fmt: skip
    formats = {
        "fleet_size": "{:,}", "rental_count": "{:,}", "total_revenue": "{:,.2f}",
        "avg_revenue_per_rental": "{:,.2f}", "avg_rental_hours": "{:,.1f}",
        "utilization_rate": "{:.1%}",
    }  # fmt: skip
    return _present(ordered, columns, formats)


def present_spenders(spenders: pd.DataFrame) -> Styler:
    columns = {
        "spend_rank": "rank", "user_id": "user", "first_name": "first name",
        "last_name": "last name", "total_spent": "spent (USD)", "rental_count": "rentals",
    }  # fmt: skip
    return _present(spenders, columns, {"total_spent": "{:,.2f}", "rental_count": "{:,}"})


def present_quality(validation: dict) -> Styler:
    """``quality_table`` for readers: thousands separators, reconciliation as yes / NO."""
    table = quality_table(validation).reset_index()
    counts = ["rows in", "valid", "rejected", "exact duplicates"]
    return (
        table.style.format(dict.fromkeys(counts, "{:,}"))
        .format({"reconciles": lambda ok: "yes" if ok else "NO"})
        .hide(axis="index")
    )
