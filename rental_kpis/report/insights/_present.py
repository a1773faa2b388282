"""The KPI tables as the report shows them (``ReportTable``)."""

from __future__ import annotations

import pandas as pd

from rental_kpis.report.insights._format import (
    NOT_AVAILABLE,
    count,
    human,
    missing,
    money,
    shown,
    user_label,
)
from rental_kpis.report.insights._headline import Headline
from rental_kpis.report.insights._periods import month_label
from rental_kpis.report.insights._quality import quality_table, rejections
from rental_kpis.report.insights._tables import ReportTable, facts_table, table
from rental_kpis.report.insights._takeaways import location_label


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
