"""Revenue by month (partial months told apart) and by weekday, with their takeaways."""

from __future__ import annotations

import calendar
from datetime import date

import pandas as pd

from rental_kpis.report.insights._format import about_same, day, money, percent
from rental_kpis.report.insights._takeaways import without_revenue

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
