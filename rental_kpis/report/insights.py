"""What the report says, computed from the KPI tables: headline numbers, ranked views and the
one-sentence takeaway under every chart.

Pure pandas functions over frames read from the catalog (DuckDB locally, Athena on AWS), so
every sentence in the report is a function of the data and can be tested on hand-made rows.
Not used on EMR.
"""

from __future__ import annotations

import calendar
import html
import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from rental_kpis.summaries import DatasetCounts  # the step's own reconciliation rule

TOP_N = 10


# ---------------------------------------------------------------- formatting

# Two numbers within this relative distance of each other are "about the same": a reader is
# not told that 8.1% beats 7.9%. Stated in the report's definitions.
TOLERANCE = 0.10

# Names a reader sees instead of the identifiers of the data (snake_case).
LABELS: dict[str, str] = {
    "high_end": "high-end",
    "rental_transactions": "rental transactions",
    "malformed_row": "malformed row",
}


# What a number without a value (an average over no rows, SPEC §4) shows as.
NOT_AVAILABLE = "n/a"


def missing(value: object) -> bool:
    """None or NaN: a value the tables do not have (SPEC §4: averages over no rows)."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def money(value: float | None) -> str:
    """The one money format of the report, tables, sentences and bar labels alike: whole
    dollars with thousands separators ($1,234,567). Prices are whole dollars per hour, so
    totals are whole; averages lose only cents. No value is "n/a"."""
    if value is None or missing(value):
        return NOT_AVAILABLE
    return f"-${-value:,.0f}" if value < 0 else f"${value:,.0f}"


def count(value: float) -> str:
    """A count with thousands separators: 20,012."""
    return f"{int(value):,}"


def percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole and not missing(part) else NOT_AVAILABLE


# Unicode's explicit directional formatting characters (UAX #9): embeddings, overrides,
# isolates and marks. In a value they reorder the text around it: a location name holding
# U+202E (right-to-left override) shows "$2,660" after it as "066,2$".
BIDI_CONTROLS = dict.fromkeys(
    map(ord, "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
)
FIRST_STRONG_ISOLATE, POP_DIRECTIONAL_ISOLATE = "\u2068", "\u2069"


def shown(value: object) -> str:
    """A value from the data as the report shows it in sentences, tables and labels: missing
    is "", bidi control characters are removed, and a value written in a right-to-left script
    is isolated (first strong isolate ... pop directional isolate), so that it can never
    reorder the numbers and words around it."""
    if missing(value):
        return ""
    text = str(value).translate(BIDI_CONTROLS)
    if any(unicodedata.bidirectional(c) in ("R", "AL") for c in text):
        return f"{FIRST_STRONG_ISOLATE}{text}{POP_DIRECTIONAL_ISOLATE}"
    return text


def human(name: object) -> str:
    """An identifier as a reader reads it: ``negative_amount`` → "negative amount"."""
    text = shown(name)
    return LABELS.get(text, text.replace("_", " "))


def user_label(first_name: object, last_name: object, user_id: object) -> str:
    """How the report names a user, in tables and charts alike: initials and the id, e.g.
    "A.L. (u1)": enough to tell users apart, no full names in a mailed report."""

    def initial(name: object) -> str:
        text = "" if missing(name) else str(name).translate(BIDI_CONTROLS).strip()
        return f"{shown(text[:1].upper())}." if text else "?."

    return f"{initial(first_name)}{initial(last_name)} ({shown(user_id)})"


def about_same(a: float, b: float, tolerance: float = TOLERANCE) -> bool:
    """True when ``a`` and ``b`` differ by at most ``tolerance`` of the larger one."""
    high = max(abs(a), abs(b))
    return high == 0 or abs(a - b) <= tolerance * high


def day(value: object) -> date:
    """A date of the tables as a ``datetime.date``, whatever form the engine gave it in (a
    date, a timestamp of any resolution, NumPy's datetime64, ISO text): every day of years
    0001-9999 that a run accepts, beyond pandas' nanosecond range (1677-2262)."""
    if isinstance(value, datetime):  # pandas' Timestamp too
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, np.datetime64):
        return value.astype("datetime64[D]").item()
    return date.fromisoformat(str(value)[:10])


def days(values: pd.Series) -> list[date]:
    """``day`` of every value of a column, in its order."""
    return [day(value) for value in values]


# ---------------------------------------------------------------- headline


@dataclass(frozen=True)
class Headline:
    revenue: float
    rentals: int
    active_users: int
    vehicles_rented: int
    fleet_size: int
    first_day: date | None  # None: no rentals
    last_day: date | None

    @property
    def days(self) -> int:
        if self.first_day is None or self.last_day is None:
            return 0
        return (self.last_day - self.first_day).days + 1

    @property
    def period(self) -> str:
        """The calendar days of rental starts, e.g. "2024-01-01 to 2024-05-31"."""
        if self.first_day is None:
            return "no rentals"
        return f"{self.first_day} to {self.last_day}"

    def table(self) -> pd.DataFrame:
        """The headline as the report shows it: one row per number, formatted."""
        rows = [
            ("Revenue", money(self.revenue)),
            ("Rentals", f"{self.rentals:,}"),
            ("Active users", f"{self.active_users:,}"),
            ("Vehicles rented", f"{self.vehicles_rented:,} of {self.fleet_size:,} in the fleet"),
            ("Period", f"{self.period} ({self.days:,} days)" if self.days else self.period),
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
        first_day=min(days(daily["rental_date"]), default=None),
        last_day=max(days(daily["rental_date"]), default=None),
    )


# ---------------------------------------------------------------- ranked views + takeaways


def top_locations(locations: pd.DataFrame, n: int = TOP_N) -> pd.DataFrame:
    """The ``n`` locations with the most revenue (ties by location id, as the queries order)."""
    ranked = locations.sort_values(["total_revenue", "location_id"], ascending=[False, True])
    return ranked.head(n).reset_index(drop=True)


def location_label(name: object, city: object) -> str:
    """A location as tables and charts name it: its name, with the city when the name lacks it
    (and the city is known)."""
    name, city = shown(name), shown(city)
    return name if city in name else f"{name} ({city})"


NO_CITY = "(no city)"


def city_label(city: object, state: object) -> str:
    """A city as sentences and charts name it: "Denver, CO"; a city or state the data lacks is
    not shown as "None": "(no city), WA", or the city alone."""
    city, state = shown(city) or NO_CITY, shown(state)
    return f"{city}, {state}" if state else city


def without_revenue(what: str, rentals: float) -> str:
    """The takeaway of a view with no revenue to compare: there are no valid rentals, or
    every one of them brought $0."""
    why = (
        f"the {count(rentals)} valid rentals brought $0"
        if rentals
        else "there are no valid rentals"
    )
    return f"No {what} has revenue: {why}."


def top_locations_takeaway(locations: pd.DataFrame, n: int = TOP_N) -> str:
    top = top_locations(locations, n)
    total = locations["total_revenue"].sum()
    if not total:
        return without_revenue("location", locations["transaction_count"].sum())
    leader = top.iloc[0]
    name = location_label(leader["location_name"], leader["city"])
    together = (
        f"the top {len(top)} locations together bring {percent(top['total_revenue'].sum(), total)}"
        f" of revenue from {len(locations):,} locations."
    )
    if len(top) > 1 and about_same(leader["total_revenue"], top.iloc[1]["total_revenue"]):
        second = top.iloc[1]
        return (
            f"{name} and {location_label(second['location_name'], second['city'])} lead with"
            f" about the same revenue ({money(leader['total_revenue'])} and"
            f" {money(second['total_revenue'])}); {together}"
        )
    return (
        f"{name} leads with {money(leader['total_revenue'])}"
        f" ({percent(leader['total_revenue'], total)} of revenue); {together}"
    )


def vehicle_types_takeaway(vehicle_types: pd.DataFrame) -> str:
    """Revenue share against rental share: the type that earns most per rental, and the type
    rented most; utilization is compared only beyond the tolerance."""
    revenue, rentals = vehicle_types["total_revenue"].sum(), vehicle_types["rental_count"].sum()
    if not rentals:
        return without_revenue("vehicle type", rentals)
    top = vehicle_types.sort_values(["total_revenue", "vehicle_type"], ascending=[False, True])
    most = vehicle_types.sort_values(["rental_count", "vehicle_type"], ascending=[False, True])
    leader, popular = top.iloc[0], most.iloc[0]
    story = (
        f"{human(leader['vehicle_type'])} vehicles bring"
        f" {percent(leader['total_revenue'], revenue)} of revenue from"
        f" {percent(leader['rental_count'], rentals)} of rentals"
    )
    if popular["vehicle_type"] != leader["vehicle_type"]:
        story += (
            f"; {human(popular['vehicle_type'])} vehicles, rented most"
            f" ({percent(popular['rental_count'], rentals)} of rentals), bring"
            f" {percent(popular['total_revenue'], revenue)} of revenue"
        )
    use = vehicle_types["utilization_rate"].dropna()
    over = f"; {OVERLAPPING}" if len(use) and use.max() > 1 else ""
    if len(use) and about_same(use.max(), use.min()):
        usage = (
            f"utilization is about the same for every type ({100 * use.min():.1f}% to"
            f" {100 * use.max():.1f}% of the fleet's hours{over})"
        )
    else:
        busiest = vehicle_types.sort_values(
            ["utilization_rate", "vehicle_type"], ascending=[False, True]
        ).iloc[0]
        usage = (
            f"{human(busiest['vehicle_type'])} has the highest utilization"
            f" ({100 * busiest['utilization_rate']:.1f}% of the fleet's hours{over})"
        )
    return f"{story}; {usage}."


# Why a utilization can exceed 100%: a vehicle rented twice at once. Each rental lies within
# the utilization period, so a type's rented hours exceed its fleet's hours only then.
OVERLAPPING = (
    "above 100%: some vehicles have rentals that overlap in time, so the data counts more"
    " rented hours than the fleet has"
)


def trend_band(trend: pd.DataFrame) -> float:
    """How far the 7-day mean moves by chance: twice the standard deviation of the difference
    of two independent 7-day means, 2 × sd(daily revenue) × √(2/7). A change within it is
    noise, not a rise or a fall."""
    spread = float(trend["total_revenue"].std(ddof=1)) if len(trend) > 1 else 0.0
    return 2 * spread * (2 / 7) ** 0.5


def daily_takeaway(trend: pd.DataFrame) -> str:
    """``trend`` is the ``daily_revenue_trend`` answer: rental_date, total_revenue, 7-day mean.
    The first full 7-day mean is compared with the last; it rose or fell only when the change
    is beyond the series' own spread (``trend_band``)."""
    if trend.empty:
        return without_revenue("day", 0)
    best = trend.sort_values(["total_revenue", "rental_date"], ascending=[False, True]).iloc[0]
    means = trend.sort_values("rental_date")["revenue_7day_mean"]
    first, last = means.iloc[min(6, len(means) - 1)], means.iloc[-1]
    change = last - first
    band = trend_band(trend)
    relative = f"{100 * change / first:+.1f}%" if first else "n/a"
    if abs(change) > band:
        verdict = (
            f"{'rose' if change > 0 else 'fell'} from {money(first)} to {money(last)}"
            f" ({relative}), beyond the day-to-day spread (±{money(band)})"
        )
    else:
        verdict = (
            f"held steady: {money(first)} to {money(last)} ({relative}) is within the"
            f" day-to-day spread (±{money(band)})"
        )
    return (
        f"Revenue averaged {money(trend['total_revenue'].mean())} a day; the best day was"
        f" {day(best['rental_date'])} ({money(best['total_revenue'])}), and the 7-day mean"
        f" {verdict}."
    )


def top_spenders_takeaway(spenders: pd.DataFrame, users: pd.DataFrame) -> str:
    """``spenders`` is the ``top_spending_users`` answer; ``users`` the whole user_metrics."""
    if spenders.empty:
        return without_revenue("user", 0)
    leader = spenders.iloc[0]
    total = users["total_spent"].sum()
    name = user_label(leader["first_name"], leader["last_name"], leader["user_id"])
    return (
        f"{name} spent the most ({money(leader['total_spent'])} over"
        f" {int(leader['rental_count']):,} rentals); the top {len(spenders)} users"
        f" ({percent(len(spenders), len(users))} of active users) bring"
        f" {percent(spenders['total_spent'].sum(), total)} of revenue."
    )


def spend_takeaway(users: pd.DataFrame) -> str:
    """The median and the 90th percentile of spend per user, and their ratio when the median
    is not $0."""
    spent = users["total_spent"]
    if spent.empty:
        return without_revenue("user", 0)
    median, p90 = spent.median(), spent.quantile(0.9)
    ratio = f", {p90 / median:.1f}x the median" if median > 0 else ""
    return (
        f"Half of the {len(users):,} active users spent under {money(median)}; the top 10%"
        f" spent over {money(p90)}{ratio}."
    )


def city_takeaway(cities: pd.DataFrame, n: int = 5) -> str:
    """``cities`` is the ``revenue_by_city`` answer (highest revenue first)."""
    total = cities["total_revenue"].sum()
    if not total:
        return without_revenue("city", cities["transaction_count"].sum())
    leader = cities.iloc[0]
    return (
        f"{city_label(leader['city'], leader['state'])} brings the most revenue"
        f" ({money(leader['total_revenue'])}, {percent(leader['total_revenue'], total)});"
        f" the top {min(n, len(cities))} of {len(cities)} cities bring"
        f" {percent(cities['total_revenue'].head(n).sum(), total)}."
    )


# ---------------------------------------------------------------- months, weekdays, rentals


MONTH_COLUMNS = (
    "month", "total_revenue", "transaction_count", "days_covered", "days_in_month", "partial"
)  # fmt: skip


def _year_month(month: object) -> tuple[int, int]:
    """A ``yyyy-MM`` month of the ``monthly_revenue`` answer as (year, month)."""
    year, number = str(month).split("-")
    return int(year), int(number)


def monthly(answer: pd.DataFrame, first_day: date | None, last_day: date | None) -> pd.DataFrame:
    """The ``monthly_revenue`` answer with the days each month has data for: a month the
    period [first_day, last_day] does not cover whole is partial, and its total is not
    comparable with a whole month's. Any month of years 0001-9999."""
    rows = []
    for row in answer.sort_values("month").itertuples():
        year, number = _year_month(row.month)
        length = calendar.monthrange(year, number)[1]
        start, end = date(year, number, 1), date(year, number, length)
        covered = (min(end, last_day or end) - max(start, first_day or start)).days + 1
        rows.append(
            {
                "month": row.month,
                "total_revenue": float(row.total_revenue),
                "transaction_count": int(row.transaction_count),
                "days_covered": covered,
                "days_in_month": length,
                "partial": covered < length,
            }
        )
    return pd.DataFrame(rows, columns=list(MONTH_COLUMNS))


def month_label(row: pd.Series) -> str:
    year = str(row["month"]).split("-")[0]  # as the answer writes it: 0001, 2024
    name = f"{calendar.month_abbr[_year_month(row['month'])[1]]} {year}"
    return (
        f"{name} (partial: {row['days_covered']} of {row['days_in_month']} days)"
        if row["partial"]
        else name
    )


def monthly_takeaway(months: pd.DataFrame) -> str:
    whole = months[~months["partial"]]
    partial = months[months["partial"]]
    note = (
        f" {', '.join(month_label(r) for _, r in partial.iterrows())}"
        f" {'is' if len(partial) == 1 else 'are'} partial and not compared."
        if len(partial)
        else ""
    )
    if whole.empty:
        return f"No month is covered whole by the data, so months are not compared.{note}"
    best = whole.sort_values(["total_revenue", "month"], ascending=[False, True]).iloc[0]
    worst = whole.sort_values(["total_revenue", "month"]).iloc[0]
    if len(whole) == 1:
        verdict = (
            f"The one whole month, {month_label(best)}, brought {money(best['total_revenue'])}."
        )
    elif about_same(best["total_revenue"], worst["total_revenue"]):
        verdict = (
            f"The {len(whole)} whole months brought about the same revenue"
            f" ({money(worst['total_revenue'])} to {money(best['total_revenue'])})."
        )
    else:
        verdict = (
            f"{month_label(best)} was the best whole month ({money(best['total_revenue'])}),"
            f" {percent(best['total_revenue'] - worst['total_revenue'], worst['total_revenue'])}"
            f" above {month_label(worst)} ({money(worst['total_revenue'])})."
        )
    return verdict + note


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def weekdays(daily: pd.DataFrame) -> pd.DataFrame:
    """Revenue per weekday of rental start: the total, the number of such days with rentals,
    and the average per day (weekdays occur a different number of times in a period)."""
    numbers = [day(value).weekday() for value in daily["rental_date"]]
    grouped = daily.assign(weekday=numbers).groupby("weekday")
    frame = grouped.agg(total_revenue=("total_revenue", "sum"), days=("total_revenue", "size"))
    frame["revenue_per_day"] = frame["total_revenue"] / frame["days"]
    frame = frame.reindex(range(7)).dropna(subset=["days"])
    frame.insert(0, "day", [WEEKDAYS[i] for i in frame.index])
    return frame.reset_index(drop=True)


def weekday_takeaway(by_day: pd.DataFrame) -> str:
    if by_day.empty:
        return without_revenue("weekday", 0)
    best = by_day.loc[by_day["revenue_per_day"].idxmax()]
    worst = by_day.loc[by_day["revenue_per_day"].idxmin()]
    if about_same(best["revenue_per_day"], worst["revenue_per_day"]):
        return (
            f"Revenue is about the same on every weekday: {money(worst['revenue_per_day'])}"
            f" ({worst['day']}) to {money(best['revenue_per_day'])} ({best['day']}) a day"
            f" on average."
        )
    return (
        f"{best['day']} brings the most revenue ({money(best['revenue_per_day'])} a day on"
        f" average), {worst['day']} the least ({money(worst['revenue_per_day'])})."
    )


@dataclass(frozen=True)
class RentalFacts:
    """Averages per rental and the share of users and rentals an analyst asks about first."""

    rentals: int
    revenue: float
    rental_hours: float
    active_users: int
    returning_users: int
    returning_revenue: float
    one_way: int | None  # None when the rentals' pickup/dropoff pairs were not read
    pairs: int = 0  # rentals whose pickup/dropoff pair was read (the one-way share's whole)

    @property
    def hours_per_rental(self) -> float:
        return self.rental_hours / self.rentals if self.rentals else 0.0

    @property
    def revenue_per_rental(self) -> float:
        return self.revenue / self.rentals if self.rentals else 0.0

    def table(self) -> ReportTable:
        average = (
            f"{self.hours_per_rental:,.1f} hours, {money(self.revenue_per_rental)}"
            if self.rentals
            else "no rentals"
        )
        rows = [
            ("Average rental", average),
            (
                "Returning users",
                f"{self.returning_users:,} of {self.active_users:,} active users"
                f" ({percent(self.returning_users, self.active_users)}) rented more than once",
            ),
            ("Revenue from returning users", percent(self.returning_revenue, self.revenue)),
        ]
        if self.one_way is not None:
            rows.append(
                (
                    "One-way rentals",
                    f"{self.one_way:,} of {self.pairs:,} ({percent(self.one_way, self.pairs)})"
                    " dropped off at another location",
                )
            )
        return facts_table(rows)

    def takeaway(self) -> str:
        if not self.rentals:
            return "There are no valid rentals: no averages, returning users or one-way rentals."
        one_way = (
            f"; {percent(self.one_way, self.pairs)} of rentals are one-way"
            if self.one_way is not None
            else ""
        )
        return (
            f"An average rental lasts {self.hours_per_rental:,.1f} hours and brings"
            f" {money(self.revenue_per_rental)}; {percent(self.returning_users, self.active_users)}"
            f" of active users rented more than once and bring"
            f" {percent(self.returning_revenue, self.revenue)} of revenue{one_way}."
        )


def rental_facts(
    daily: pd.DataFrame, users: pd.DataFrame, pairs: pd.DataFrame | None = None
) -> RentalFacts:
    """From ``daily_metrics`` and ``user_metrics``; ``pairs`` (pickup_location,
    dropoff_location of every valid rental, from the curated zone) gives the one-way count."""
    returning = users[users["rental_count"] > 1]
    one_way = None
    if pairs is not None:
        one_way = int((pairs["pickup_location"] != pairs["dropoff_location"]).sum())
    return RentalFacts(
        rentals=int(daily["transaction_count"].sum()),
        revenue=float(daily["total_revenue"].sum()),
        rental_hours=float(daily["total_rental_hours"].sum()),
        active_users=len(users),
        returning_users=len(returning),
        returning_revenue=float(returning["total_spent"].sum()),
        one_way=one_way,
        pairs=0 if pairs is None else len(pairs),
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


OTHER = "other"


def grouped_rejections(validation: dict, top: int = 4) -> pd.DataFrame:
    """Rejections grouped by dataset (in the summary's order), each dataset's ``top`` reasons
    by rows and the rest summed into one "other" row: a chart stays readable whatever the
    number of reasons."""
    frame = rejections(validation)
    order = list(validation["datasets"])
    parts = []
    for dataset in order:
        own = frame[frame["dataset"] == dataset]
        if own.empty:
            continue
        head, rest = own.head(top), own.iloc[top:]
        if len(rest):
            other = f"{OTHER} ({len(rest)} reasons)"
            head = pd.concat(
                [
                    head,
                    pd.DataFrame(
                        [{"dataset": dataset, "reason": other, "rows": rest["rows"].sum()}]
                    ),
                ]
            )
        parts.append(head)
    if not parts:
        return frame
    return pd.concat(parts).reset_index(drop=True)


def quality_takeaway(validation: dict) -> str:
    table = quality_table(validation)
    rows_in, rejected = table["rows in"].sum(), table["rejected"].sum()
    frame = rejections(validation)
    broken = [human(d) for d, ok in table["reconciles"].items() if not ok]
    if len(frame):
        first = frame.iloc[0]
        common = (
            f" the most common reason is {human(first['reason'])}"
            f" ({human(first['dataset'])}, {first['rows']:,} rows)"
        )
    else:
        common = " no reason occurred"
    closing = (
        "every dataset reconciles (in = valid + rejected + duplicates)."
        if not broken
        else f"{', '.join(broken)} do not reconcile."
    )
    return (
        f"{rejected:,} of {rows_in:,} input rows ({percent(rejected, rows_in)}) were rejected;"
        f"{common}; {closing}"
    )


# ---------------------------------------------------------------- definitions


def utilization_period_hours(vehicle_types: pd.DataFrame) -> float | None:
    """The period utilization is measured over, read back from the table itself
    (total_rental_hours = utilization_rate × fleet_size × period_hours, SPEC §4)."""
    usable = vehicle_types[
        (vehicle_types["utilization_rate"] > 0) & (vehicle_types["fleet_size"] > 0)
    ]
    if usable.empty:
        return None
    row = usable.iloc[0]
    return float(row["total_rental_hours"] / (row["fleet_size"] * row["utilization_rate"]))


def definitions(headline: Headline, vehicle_types: pd.DataFrame) -> ReportTable:
    """Every number of the report in one sentence, with this run's period in both of the
    forms the report uses: calendar days of rental starts (headline) and hours from the first
    start to the last end (utilization)."""
    period = utilization_period_hours(vehicle_types)
    utilization_period = (
        f" The utilization period runs from the first rental's start to the last rental's end:"
        f" {period:,.1f} hours ({period / 24:,.1f} days) here, against the headline's"
        f" {headline.days:,} calendar days of rental starts: it counts hours, not days, and runs"
        f" on until the last rental ends."
        if period is not None
        else ""
    )
    rows = [
        ("Rental", "A row of rental_transactions that passed every validation check; rejected"
         " rows and exact duplicates are not counted."),
        ("Revenue", "The sum of total_amount over rentals, in USD, shown in whole dollars."),
        ("Period", f"The calendar days (UTC) with at least one rental start: {headline.period}"
         f", {headline.days:,} days."),
        ("Active user", "A user with at least one rental in the period."),
        ("Returning user", "An active user with two rentals or more."),
        ("Vehicles rented", "Distinct vehicles with at least one rental, out of the valid fleet"
         " (vehicles that passed validation)."),
        ("Rental hours", "End time minus start time of a rental, in hours."),
        ("Average rental", "Rental hours and revenue divided by the number of rentals."),
        ("One-way rental", "A rental dropped off at a location other than its pickup location."),
        ("Location revenue", "Revenue of the rentals picked up at the location."),
        ("Utilization", "Rented hours of a vehicle type divided by its fleet size times the"
         " utilization period, in hours." + utilization_period),
        ("7-day mean", "The mean daily revenue over a day and the six days with rentals before"
         " it."),
        ("Rise or fall", "A change of the 7-day mean larger than twice the standard deviation"
         " of the difference of two 7-day means (2 × sd of daily revenue × √(2/7)); smaller"
         " changes are reported as steady."),
        ("About the same", f"Two numbers within {TOLERANCE:.0%} of the larger one."),
        ("Partial month", "A month the period does not cover whole; its total is shown but not"
         " compared with whole months."),
        ("Spend rank", "Users ranked by total spent, highest first; equal totals share a rank."),
        ("Reconciles", "Rows in = valid + rejected + exact duplicates, per dataset."),
    ]  # fmt: skip
    return facts_table(rows)


# ---------------------------------------------------------------- tables as the report shows them


@dataclass(frozen=True)
class ReportTable:
    """A table as the report shows it: every cell already formatted as text, one alignment per
    column (text left, numbers right). Rendered by our own few lines of HTML, where every
    value is escaped: a location named ``<script>…`` shows as text, never runs."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]
    header: bool = True
    row_headers: bool = False  # the first column labels its row (a <th>)

    def to_html(self) -> str:
        def cell(value: str, i: int) -> str:
            text = html.escape(value)
            if self.row_headers and i == 0:
                return f"<th>{text}</th>"
            if not self.header:  # a label / value table: aligned by its class (``facts``)
                return f"<td>{text}</td>"
            return f'<td class="{"num" if self.numeric[i] else "text"}">{text}</td>'

        head = ""
        if self.header:
            labels = "".join(
                f'<th class="{"num" if self.numeric[i] else "text"}">{html.escape(c)}</th>'
                for i, c in enumerate(self.columns)
            )
            head = f"<thead><tr>{labels}</tr></thead>"
        body = "".join(
            "<tr>" + "".join(cell(v, i) for i, v in enumerate(row)) + "</tr>" for row in self.rows
        )
        kind = "report-table" if self.header else "report-table facts"
        return f'<table class="{kind}">{head}<tbody>{body}</tbody></table>'

    def _repr_html_(self) -> str:
        return self.to_html()

    def texts(self, column: str) -> list[str]:
        i = self.columns.index(column)
        return [row[i] for row in self.rows]


@dataclass(frozen=True)
class Note:
    """A computed sentence shown as a paragraph of the report, escaped like every value."""

    text: str

    def _repr_html_(self) -> str:
        return f'<p class="takeaway">{html.escape(self.text)}</p>'


def facts_table(rows: list[tuple[str, str]]) -> ReportTable:
    """Label / value rows, no header line (a header would only say "value")."""
    return ReportTable(
        columns=("", ""),
        rows=tuple((str(label), str(value)) for label, value in rows),
        numeric=(False, False),
        header=False,
        row_headers=True,
    )


# A cell formatter: the cells are a frame's values, whatever its column holds.
Formatter = Callable[[Any], str]


def table(frame: pd.DataFrame, columns: dict[str, tuple[str, Formatter]]) -> ReportTable:
    """``frame``'s ``columns`` as ``{source: (label, format)}``; a column is right-aligned
    when its source values are numbers."""
    cells = [tuple(fmt(value) for value in frame[source]) for source, (_, fmt) in columns.items()]
    numeric = tuple(
        pd.api.types.is_numeric_dtype(frame[source])
        and not pd.api.types.is_bool_dtype(frame[source])
        for source in columns
    )
    return ReportTable(
        columns=tuple(label for label, _ in columns.values()),
        rows=tuple(zip(*cells, strict=True)) if cells else (),
        numeric=numeric,
    )


def _hours(value: float) -> str:
    return NOT_AVAILABLE if missing(value) else f"{value:,.1f}"


def _share(value: float) -> str:
    return NOT_AVAILABLE if missing(value) else f"{100 * value:.1f}%"


def present_headline(headline: Headline) -> ReportTable:
    frame = headline.table()
    return facts_table(list(zip(frame.index, frame["value"], strict=True)))


def present_locations(top: pd.DataFrame) -> ReportTable:
    labelled = top.assign(
        location=[location_label(r.location_name, r.city) for r in top.itertuples()]
    )
    return table(
        labelled,
        {
            "location": ("Location", shown), "state": ("State", shown),
            "total_revenue": ("Revenue", money), "transaction_count": ("Rentals", count),
            "avg_transaction_amount": ("Revenue per rental", money),
            "unique_users": ("Users", count),
        },
    )  # fmt: skip


def present_vehicle_types(vehicle_types: pd.DataFrame) -> ReportTable:
    ordered = vehicle_types.sort_values("total_revenue", ascending=False)
    revenue, rentals = ordered["total_revenue"].sum(), ordered["rental_count"].sum()
    shares = ordered.assign(
        label=[human(t) for t in ordered["vehicle_type"]],
        revenue_share=ordered["total_revenue"] / revenue if revenue else 0.0,
        rental_share=ordered["rental_count"] / rentals if rentals else 0.0,
    )
    return table(
        shares,
        {
            "label": ("Vehicle type", shown), "fleet_size": ("Fleet", count),
            "rental_count": ("Rentals", count), "rental_share": ("Share of rentals", _share),
            "total_revenue": ("Revenue", money), "revenue_share": ("Share of revenue", _share),
            "avg_revenue_per_rental": ("Revenue per rental", money),
            "avg_rental_hours": ("Hours per rental", _hours),
            "utilization_rate": ("Utilization", _share),
        },
    )  # fmt: skip


def present_spenders(spenders: pd.DataFrame) -> ReportTable:
    labelled = spenders.assign(
        user=[user_label(r.first_name, r.last_name, r.user_id) for r in spenders.itertuples()]
    )
    return table(
        labelled,
        {
            "spend_rank": ("Rank", count), "user": ("User", shown),
            "total_spent": ("Spent", money), "rental_count": ("Rentals", count),
        },
    )  # fmt: skip


def present_months(months: pd.DataFrame) -> ReportTable:
    labelled = months.assign(label=[month_label(r) for _, r in months.iterrows()])
    return table(
        labelled,
        {
            "label": ("Month", shown), "total_revenue": ("Revenue", money),
            "transaction_count": ("Rentals", count),
        },
    )  # fmt: skip


def present_quality(validation: dict) -> ReportTable:
    """``quality_table`` for readers: thousands separators, reconciliation as yes / NO."""
    frame = quality_table(validation).reset_index()
    frame["dataset"] = [human(d) for d in frame["dataset"]]
    return table(
        frame,
        {
            "dataset": ("Dataset", shown), "rows in": ("Rows in", count),
            "valid": ("Valid", count), "rejected": ("Rejected", count),
            "exact duplicates": ("Exact duplicates", count),
            "reconciles": ("Reconciles", lambda ok: "yes" if ok else "NO"),
        },
    )  # fmt: skip


def present_rejections(validation: dict) -> ReportTable:
    frame = rejections(validation)
    frame = frame.assign(
        dataset=[human(d) for d in frame["dataset"]], reason=[human(r) for r in frame["reason"]]
    )
    return table(
        frame,
        {"dataset": ("Dataset", shown), "reason": ("Reason", shown), "rows": ("Rows", count)},
    )


def present_facts(facts: pd.DataFrame) -> ReportTable:
    """A one-column frame indexed by label (``run_facts``) without its header."""
    return facts_table([(str(k), shown(v)) for k, v in facts.iloc[:, 0].items()])
