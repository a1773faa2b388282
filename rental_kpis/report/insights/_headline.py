"""The headline numbers: totals over the whole period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from rental_kpis.report.insights._format import days, money


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
