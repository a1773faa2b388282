"""Ranked views and the one-sentence takeaway under the charts of locations, vehicle
types, daily revenue, users and cities."""

from __future__ import annotations

import pandas as pd

from rental_kpis.report.insights._format import (
    about_same,
    count,
    day,
    human,
    money,
    percent,
    shown,
    user_label,
)

TOP_N = 10


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
    """How far the 7-day mean moves by chance: 2 × sd(daily revenue) × √(2/7)."""
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
