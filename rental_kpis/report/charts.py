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
from datetime import date
from typing import cast

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.patches import Patch
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
        # Layout lives in the report template's CSS: the sanitiser drops style attributes.
        return (
            f'<figure class="chart"><img src="data:image/png;base64,{data}" alt="{title}">'
            f"<figcaption>{html.escape(self.takeaway)}</figcaption></figure>"
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
    """Tick labels a reader scans: $950, $1.5k, $12k, $1.25M; with the decimals a tick needs
    (up to two), so that no two ticks read the same."""
    size, sign = abs(value), "-" if value < 0 else ""
    scale, suffix = (1e6, "M") if size >= 1e6 else (1e3, "k") if size >= 1e3 else (1, "")
    number = f"{size / scale:,.2f}".rstrip("0").rstrip(".")
    return f"{sign}${number}{suffix}"


USD = FuncFormatter(_usd)


def literal(text: str) -> str:
    """Text from the data as a chart draws it, as written: ``$`` escaped, bidi controls removed."""
    # Matplotlib reads $…$ as mathtext, and draws text without the bidi algorithm.
    return text.translate(insights.BIDI_CONTROLS).replace("$", r"\$")


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    """``text`` cut to ``limit`` characters, drawn literally (``literal``)."""
    text = text.translate(insights.BIDI_CONTROLS)
    return literal(text if len(text) <= limit else text[: limit - 1] + "…")


def _highest(*values: pd.Series) -> float:
    """The largest value of ``values``, or 0 when there is none: an axis limit never NaN."""
    highest = max((float(v) for series in values for v in series if pd.notna(v)), default=0.0)
    return max(highest, 0.0)


def _date_range(first: date, last: date) -> tuple[date, date]:
    """An axis from ``first`` to ``last`` with a margin, kept within the years 0001-9999 that
    Matplotlib's dates hold (its own margins would reach past a rental of year 0001 or 9999)."""
    pad = max(1, (last - first).days // 50)
    low = max(first.toordinal() - pad, date.min.toordinal())
    high = min(last.toordinal() + pad, date.max.toordinal())
    return date.fromordinal(low), date.fromordinal(high)


def _nothing_to_draw(ax: Axes, what: str = "no valid rentals") -> None:
    """An empty panel says why it is empty."""
    ax.text(0.5, 0.5, what, transform=ax.transAxes, ha="center", va="center", color=GREY)


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
    """Ranked bars of amounts in USD, each labelled with its amount as the sentences write it."""
    _ranked_bars(ax, labels, values.tolist(), colour)
    ax.bar_label(
        cast(BarContainer, ax.containers[0]), labels=[insights.money(v) for v in values], padding=3
    )
    ax.xaxis.set_major_formatter(USD)


# ---------------------------------------------------------------- the charts


def top_locations(locations: pd.DataFrame, n: int = insights.TOP_N) -> Chart:
    top = insights.top_locations(locations, n)
    figure, (ax,) = _figure(height=4.8)
    labels = [insights.location_label(r.location_name, r.city) for r in top.itertuples()]
    _ranked_money(ax, labels, top["total_revenue"])
    ax.set_title(f"Top {len(top)} locations by revenue")
    ax.set_xlabel("Revenue (USD)")
    ax.set_ylabel("Pickup location")
    return Chart(figure, insights.top_locations_takeaway(locations, n))


def vehicle_types(vehicle_types: pd.DataFrame) -> Chart:
    """Share of rentals against share of revenue per type (the story), and utilization."""
    ordered = vehicle_types.sort_values(["total_revenue", "vehicle_type"], ascending=[False, True])
    names = [insights.human(t) for t in ordered["vehicle_type"]]
    rentals, revenue = ordered["rental_count"].sum(), ordered["total_revenue"].sum()
    rental_share = (
        100 * ordered["rental_count"] / rentals if rentals else 0 * ordered["rental_count"]
    )
    revenue_share = (
        100 * ordered["total_revenue"] / revenue if revenue else 0 * ordered["total_revenue"]
    )
    figure, (shares, use) = _figure(ncols=2)
    positions = list(range(len(names)))
    width = 0.38
    for offset, values, label, colour in (
        (-width / 2, rental_share, "share of rentals", ORANGE),
        (width / 2, revenue_share, "share of revenue", BLUE),
    ):
        bars = shares.bar([p + offset for p in positions], values, width, color=colour, label=label)
        shares.bar_label(bars, labels=[f"{v:.1f}%" for v in values], padding=2, fontsize=8)
    shares.set_xticks(positions, [literal(name) for name in names])
    shares.set_title("Share of rentals and of revenue")
    shares.set_xlabel("Vehicle type")
    shares.set_ylabel("Share of all rentals / revenue (%)")
    shares.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    shares.set_ylim(0, 1.25 * max(_highest(rental_share, revenue_share), 1.0))
    shares.legend(loc="upper right", fontsize=8)
    utilization = 100 * ordered["utilization_rate"]
    use.bar(positions, utilization, color=GREY)
    use.set_xticks(positions, [literal(name) for name in names])
    use.bar_label(
        cast(BarContainer, use.containers[0]), labels=[f"{v:.1f}%" for v in utilization], padding=2
    )
    use.set_title("Utilization")
    use.set_xlabel("Vehicle type")
    use.set_ylabel("Utilization (% of fleet hours)")
    use.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    use.margins(y=0.15)
    figure.suptitle("Vehicle types: share of rentals, share of revenue, utilization")
    return Chart(figure, insights.vehicle_types_takeaway(vehicle_types))


def daily_revenue(trend: pd.DataFrame) -> Chart:
    """``trend``: the ``daily_revenue_trend`` answer (revenue per day and its 7-day mean)."""
    ordered = trend.sort_values("rental_date")
    days = insights.days(ordered["rental_date"])  # any year 0001-9999, not pandas' range
    figure, (ax,) = _figure()
    # matplotlib's date units convert the dates; its stubs accept only numbers (arg-type).
    ax.bar(days, ordered["total_revenue"], color=BLUE, alpha=0.45, label="daily revenue")  # type: ignore[arg-type]
    ax.plot(days, ordered["revenue_7day_mean"], color=ORANGE, linewidth=2.2, label="7-day mean")  # type: ignore[arg-type]
    if days:
        ax.set_xlim(*_date_range(min(days), max(days)))  # type: ignore[arg-type]
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.yaxis.set_major_formatter(USD)
    ax.set_title("Daily revenue with its 7-day rolling mean")
    ax.set_xlabel("Rental start date (UTC)")
    ax.set_ylabel("Revenue (USD per day)")
    ax.set_ylim(0, 1.25 * (_highest(ordered["total_revenue"]) or 1.0))  # room for the legend
    if ordered.empty:
        _nothing_to_draw(ax)
    ax.legend(loc="upper left", ncols=2)
    return Chart(figure, insights.daily_takeaway(trend))


def monthly_revenue(months: pd.DataFrame) -> Chart:
    """``months``: ``insights.monthly`` (the ``monthly_revenue`` answer with partial months)."""
    figure, (ax,) = _figure(height=4.0)
    labels = [insights.month_label(r).replace(" (", "\n(") for _, r in months.iterrows()]
    colours = [GREY if partial else BLUE for partial in months["partial"]]
    bars = ax.bar(labels, months["total_revenue"], color=colours)
    for bar, partial in zip(bars, months["partial"], strict=True):
        if partial:
            bar.set_hatch("//")
            bar.set_edgecolor("white")
    ax.bar_label(bars, labels=[insights.money(v) for v in months["total_revenue"]], padding=2)
    ax.yaxis.set_major_formatter(USD)
    ax.margins(y=0.15)
    ax.set_title("Revenue per month (grey, hatched: partial month)")
    ax.set_xlabel("Month of rental start (UTC)")
    ax.set_ylabel("Revenue (USD per month)")
    return Chart(figure, insights.monthly_takeaway(months))


def weekday_revenue(by_day: pd.DataFrame) -> Chart:
    """``by_day``: ``insights.weekdays`` (average revenue per day of each weekday)."""
    figure, (ax,) = _figure(height=3.8)
    bars = ax.bar([d[:3] for d in by_day["day"]], by_day["revenue_per_day"], color=BLUE)
    ax.bar_label(bars, labels=[insights.money(v) for v in by_day["revenue_per_day"]], padding=2)
    ax.yaxis.set_major_formatter(USD)
    ax.margins(y=0.15)
    ax.set_title("Average revenue per weekday")
    ax.set_xlabel("Weekday of rental start (UTC)")
    ax.set_ylabel("Revenue (USD per day, average)")
    return Chart(figure, insights.weekday_takeaway(by_day))


def top_spenders(spenders: pd.DataFrame, users: pd.DataFrame) -> Chart:
    """``spenders``: the ``top_spending_users`` answer; ``users``: all of user_metrics. Users
    are named as the table names them (``insights.user_label``), with their spend rank."""
    figure, (ax,) = _figure()
    labels = [
        f"#{r.spend_rank} {insights.user_label(r.first_name, r.last_name, r.user_id)}"
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
    for value, name, colour in marks if len(spent) else ():
        label = literal(f"{name}: {insights.money(value)}")
        ax.axvline(value, color=colour, linestyle="--", label=label)
    ax.xaxis.set_major_formatter(USD)
    ax.set_title("Distribution of spend per active user")
    ax.set_xlabel("Total spent per user over the period (USD)")
    ax.set_ylabel("Users (count)")
    if len(spent):
        ax.legend()
    else:
        _nothing_to_draw(ax)
    return Chart(figure, insights.spend_takeaway(users))


def revenue_by_city(cities: pd.DataFrame, n: int = 15) -> Chart:
    """``cities``: the ``revenue_by_city`` answer, highest revenue first."""
    top = cities.head(n)
    figure, (ax,) = _figure(height=5.0)
    labels = [insights.city_label(r.city, r.state) for r in top.itertuples()]
    _ranked_money(ax, labels, top["total_revenue"])
    shown = f"top {len(top)} of {len(cities)} cities" if len(cities) > n else "every city"
    ax.set_title(f"Revenue by city ({shown})")
    ax.set_xlabel("Revenue (USD)")
    ax.set_ylabel("City")
    return Chart(figure, insights.city_takeaway(cities))


DATASET_COLOURS = (RED, ORANGE, BLUE, GREY)


def rejections(validation: dict, top: int = 4) -> Chart:
    """Rejected rows by reason, grouped by dataset, each dataset's ``top`` reasons and the
    rest as "other" (``insights.grouped_rejections``)."""
    frame = insights.grouped_rejections(validation, top)
    figure, (ax,) = _figure(height=max(3.0, 0.3 * len(frame) + 1.4))
    labels = [insights.human(r) for r in frame["reason"]]
    datasets = list(dict.fromkeys(frame["dataset"]))
    colours = {d: DATASET_COLOURS[i % len(DATASET_COLOURS)] for i, d in enumerate(datasets)}
    _ranked_bars(ax, labels, frame["rows"].tolist(), RED, limit=40)
    if len(frame):
        for bar, dataset in zip(ax.containers[0], frame["dataset"], strict=True):
            bar.set_color(colours[dataset])
        ax.bar_label(
            cast(BarContainer, ax.containers[0]),
            labels=[f"{v:,}" for v in frame["rows"]],
            padding=3,
        )
        handles = [Patch(color=colours[d], label=insights.human(d)) for d in datasets]
        ax.legend(
            handles=handles, title="Dataset", loc="upper left", bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
        )  # fmt: skip
    ax.set_title(f"Rejected rows by dataset and reason (top {top} reasons per dataset)")
    ax.set_xlabel("Rejected rows (count)")
    ax.set_ylabel("Reason")
    return Chart(figure, insights.quality_takeaway(validation))


def timeline(stages: pd.DataFrame, title: str = "Pipeline run timeline") -> Chart:
    """A Gantt chart of ``stages`` (columns stage, start_s, end_s: seconds since the run began)."""
    figure, (ax,) = _figure(height=max(2.4, 0.45 * len(stages) + 1.2))
    durations = stages["end_s"] - stages["start_s"]
    positions = list(range(len(stages)))
    ax.barh(positions, durations, left=stages["start_s"], color=BLUE)
    ax.set_yticks(positions, [insights.human(s) for s in stages["stage"]])
    ax.invert_yaxis()
    ax.bar_label(
        cast(BarContainer, ax.containers[0]), labels=[f"{d:.1f} s" for d in durations], padding=3
    )
    ax.margins(x=0.12)
    ax.set_title(title)
    ax.set_xlabel("Time since the run started (s)")
    ax.set_ylabel("Stage")
    total = float(stages["end_s"].max()) if len(stages) else 0.0
    longest = stages.iloc[int(durations.values.argmax())] if len(stages) else None
    takeaway = (
        f"The run took {total:.1f} s; {insights.human(longest['stage'])} was the longest stage"
        f" ({longest['end_s'] - longest['start_s']:.1f} s,"
        f" {insights.percent(longest['end_s'] - longest['start_s'], total)} of the run)."
        if longest is not None
        else "No stage has run yet."
    )
    return Chart(figure, takeaway)
