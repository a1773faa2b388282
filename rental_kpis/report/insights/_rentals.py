"""Averages per rental, returning users and one-way rentals."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from rental_kpis.report.insights._format import money, percent
from rental_kpis.report.insights._tables import ReportTable, facts_table


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
