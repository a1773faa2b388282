"""The report's charts: every one with a title, axis labels with units, readable ticks and the
takeaway sentence computed by ``insights``.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot state, no GUI backend), and a
``Chart`` shows itself in a notebook as HTML with the PNG embedded as a data URI: the executed
notebook and the HTML report carry the picture itself, never a path to one.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from rental_kpis.report import insights

WIDTH, HEIGHT = 9.0, 4.6
DPI = 110
BLUE, ORANGE, GREY, RED = "#1f77b4", "#ff7f0e", "#7f7f7f", "#d62728"
LABEL_CHARS = 34


@dataclass
class Chart:
    """A figure and the one sentence a reader should take away from it."""

    figure: Figure
    takeaway: str

    def png(self) -> bytes:
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=DPI)
        return buffer.getvalue()

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.png()).decode("ascii")
        title = html.escape(self.title)
        return (
            '<figure class="chart" style="break-inside: avoid; page-break-inside: avoid;'
            ' margin: 1em 0;">'
            f'<img src="data:image/png;base64,{data}" alt="{title}" style="max-width: 100%;">'
            f'<figcaption style="font-style: italic;">{html.escape(self.takeaway)}</figcaption>'
            "</figure>"
        )

    @property
    def title(self) -> str:
        suptitle = self.figure.get_suptitle()
        return suptitle or self.figure.axes[0].get_title()


def _figure(ncols: int = 1, height: float = HEIGHT) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=(WIDTH, height), layout="constrained")
    axes = figure.subplots(1, ncols, squeeze=False)[0]
    return figure, list(axes)


def _usd(value: float, _position: object = None) -> str:
    """Tick labels a reader scans: $950, $12k, $1.2M."""
    if abs(value) >= 1e6:
        return f"${value / 1e6:.1f}M"
    if abs(value) >= 1e3:
        return f"${value / 1e3:.0f}k"
    return f"${value:.0f}"


USD = FuncFormatter(_usd)


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ranked_bars(
    ax: Axes, labels: list[str], values: list[float], colour: str = BLUE, limit: int = LABEL_CHARS
) -> None:
    """Horizontal bars, largest on top, each with its value at the end."""
    positions = range(len(labels))
    ax.barh(positions, values, color=colour)
    ax.set_yticks(list(positions), [_short(label, limit) for label in labels])
    ax.invert_yaxis()
    ax.margins(x=0.15)


def _ranked_money(ax: Axes, labels: list[str], values: pd.Series, colour: str = BLUE) -> None:
    """Ranked bars of amounts in USD, each labelled with its amount ($12k)."""
    _ranked_bars(ax, labels, values.tolist(), colour)
    ax.bar_label(ax.containers[0], labels=[_usd(v) for v in values], padding=3)
    ax.xaxis.set_major_formatter(USD)


# ---------------------------------------------------------------- the charts


def top_locations(locations: pd.DataFrame, n: int = insights.TOP_N) -> Chart:
    top = insights.top_locations(locations, n)
    figure, (ax,) = _figure(height=4.8)
    labels = [
        r.location_name if r.city in r.location_name else f"{r.location_name} ({r.city})"
        for r in top.itertuples()
    ]
    _ranked_money(ax, labels, top["total_revenue"])
    ax.set_title(f"Top {len(top)} locations by revenue")
    ax.set_xlabel("Revenue (USD)")
    ax.set_ylabel("Pickup location")
    return Chart(figure, insights.top_locations_takeaway(locations, n))


def vehicle_types(vehicle_types: pd.DataFrame) -> Chart:
    ordered = vehicle_types.sort_values("total_revenue", ascending=False)
    names = ordered["vehicle_type"].tolist()
    figure, (revenue, rentals, use) = _figure(ncols=3)
    revenue_texts = [_usd(v) for v in ordered["total_revenue"]]
    rental_texts = [f"{v:,}" for v in ordered["rental_count"]]
    use_texts = [f"{100 * v:.1f}%" for v in ordered["utilization_rate"]]
    panels = (
        (revenue, ordered["total_revenue"], "Revenue (USD)", BLUE, revenue_texts),
        (rentals, ordered["rental_count"], "Rentals (count)", ORANGE, rental_texts),
        (use, 100 * ordered["utilization_rate"], "Utilization (% of fleet hours)", GREY, use_texts),
    )
    for ax, values, label, colour, texts in panels:
        ax.bar(names, values, color=colour)
        ax.bar_label(ax.containers[0], labels=texts, padding=2, fontsize=8)
        ax.set_xlabel("Vehicle type")
        ax.set_ylabel(label)
        ax.set_title(label.split(" (")[0])
        ax.margins(y=0.15)
    revenue.yaxis.set_major_formatter(USD)
    use.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    figure.suptitle("Revenue, rentals and utilization by vehicle type")
    return Chart(figure, insights.vehicle_types_takeaway(vehicle_types))


def daily_revenue(trend: pd.DataFrame) -> Chart:
    """``trend``: the ``daily_revenue_trend`` answer (revenue per day and its 7-day mean)."""
    ordered = trend.sort_values("rental_date")
    days = pd.to_datetime(ordered["rental_date"])
    figure, (ax,) = _figure()
    ax.bar(days, ordered["total_revenue"], color=BLUE, alpha=0.45, label="daily revenue")
    ax.plot(days, ordered["revenue_7day_mean"], color=ORANGE, linewidth=2.2, label="7-day mean")
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.yaxis.set_major_formatter(USD)
    ax.set_title("Daily revenue with its 7-day rolling mean")
    ax.set_xlabel("Rental start date (UTC)")
    ax.set_ylabel("Revenue (USD per day)")
    ax.set_ylim(0, 1.25 * float(ordered["total_revenue"].max()))  # room for the legend
    ax.legend(loc="upper left", ncols=2)
    return Chart(figure, insights.daily_takeaway(trend))


def top_spenders(spenders: pd.DataFrame, users: pd.DataFrame) -> Chart:
    """``spenders``: the ``top_spending_users`` answer; ``users``: all of user_metrics."""
    figure, (ax,) = _figure()
    labels = [
        f"#{r.spend_rank} {r.first_name} {r.last_name[:1]}. ({r.user_id})"
        for r in spenders.itertuples()
    ]
    _ranked_money(ax, labels, spenders["total_spent"], ORANGE)
    ax.set_title(f"Top {len(spenders)} spenders")
    ax.set_xlabel("Total spent (USD)")
    ax.set_ylabel("User (spend rank)")
    return Chart(figure, insights.top_spenders_takeaway(spenders, users))


def spend_distribution(users: pd.DataFrame) -> Chart:
    spent = users["total_spent"]
    figure, (ax,) = _figure()
    ax.hist(spent, bins=40, color=BLUE, edgecolor="white")
    marks = ((spent.median(), "median", ORANGE), (spent.quantile(0.9), "90th percentile", RED))
    for value, name, colour in marks:
        ax.axvline(value, color=colour, linestyle="--", label=f"{name}: {_usd(value)}")
    ax.xaxis.set_major_formatter(USD)
    ax.set_title("Distribution of spend per active user")
    ax.set_xlabel("Total spent per user over the period (USD)")
    ax.set_ylabel("Users (count)")
    ax.legend()
    return Chart(figure, insights.spend_takeaway(users))


def revenue_by_city(cities: pd.DataFrame, n: int = 15) -> Chart:
    """``cities``: the ``revenue_by_city`` answer, highest revenue first."""
    top = cities.head(n)
    figure, (ax,) = _figure(height=5.0)
    labels = [f"{r.city}, {r.state}" for r in top.itertuples()]
    _ranked_money(ax, labels, top["total_revenue"])
    shown = f"top {len(top)} of {len(cities)} cities" if len(cities) > n else "every city"
    ax.set_title(f"Revenue by city ({shown})")
    ax.set_xlabel("Revenue (USD)")
    ax.set_ylabel("City")
    return Chart(figure, insights.city_takeaway(cities))


def rejections(validation: dict) -> Chart:
    """Rejected rows by reason, from the validate_raw summary."""
    frame = insights.rejections(validation)
    figure, (ax,) = _figure(height=max(3.0, 0.28 * len(frame) + 1.2))
    labels = [f"{r.reason} ({r.dataset})" for r in frame.itertuples()]
    _ranked_bars(ax, labels, frame["rows"].tolist(), RED, limit=60)  # reasons are long names
    if len(frame):
        ax.bar_label(ax.containers[0], labels=[f"{v:,}" for v in frame["rows"]], padding=3)
    ax.set_title("Rejected rows by reason")
    ax.set_xlabel("Rejected rows (count)")
    ax.set_ylabel("Reason (dataset)")
    return Chart(figure, insights.quality_takeaway(validation))


def timeline(stages: pd.DataFrame, title: str = "Pipeline run timeline") -> Chart:
    """A Gantt chart of ``stages`` (columns stage, start_s, end_s: seconds since the run began)."""
    figure, (ax,) = _figure(height=max(2.4, 0.45 * len(stages) + 1.2))
    durations = stages["end_s"] - stages["start_s"]
    positions = list(range(len(stages)))
    ax.barh(positions, durations, left=stages["start_s"], color=BLUE)
    ax.set_yticks(positions, stages["stage"].tolist())
    ax.invert_yaxis()
    ax.bar_label(ax.containers[0], labels=[f"{d:.1f} s" for d in durations], padding=3)
    ax.margins(x=0.12)
    ax.set_title(title)
    ax.set_xlabel("Time since the run started (s)")
    ax.set_ylabel("Stage")
    total = float(stages["end_s"].max()) if len(stages) else 0.0
    longest = stages.iloc[int(durations.values.argmax())] if len(stages) else None
    takeaway = (
        f"The run took {total:.1f} s; {longest['stage']} was the longest stage"
        f" ({longest['end_s'] - longest['start_s']:.1f} s,"
        f" {insights.percent(longest['end_s'] - longest['start_s'], total)} of the run)."
        if longest is not None
        else "No stage has run yet."
    )
    return Chart(figure, takeaway)
