"""The report's definitions: every number in one sentence, with this run's period."""

from __future__ import annotations

import pandas as pd

from rental_kpis.report.insights._format import TOLERANCE
from rental_kpis.report.insights._headline import Headline
from rental_kpis.report.insights._tables import ReportTable, facts_table


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
