"""The report's numbers, sentences and charts on small hand-made tables (no Spark)."""

from __future__ import annotations

import base64
import html
import re
from datetime import date

import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import FancyArrowPatch

from rental_kpis.aws import statemachine
from rental_kpis.report import charts, insights, state_diagram

LOCATIONS = pd.DataFrame(
    {
        "location_id": [3, 1, 2, 4],
        "location_name": ["Dock", "Airport", "Harbor", "Mall"],
        "city": ["Austin", "Austin", "Boston", "Boston"],
        "state": ["TX", "TX", "MA", "MA"],
        "total_revenue": [300.0, 500.0, 300.0, 100.0],
        "transaction_count": [3, 4, 2, 1],
        "avg_transaction_amount": [100.0, 125.0, 150.0, 100.0],
        "unique_users": [3, 4, 2, 1],
    }
)
VEHICLE_TYPES = pd.DataFrame(
    {
        "vehicle_type": ["basic", "premium", "high_end"],
        "fleet_size": [10, 5, 2],
        "rental_count": [6, 3, 1],
        "total_revenue": [300.0, 600.0, 300.0],
        "avg_revenue_per_rental": [50.0, 200.0, 300.0],
        "avg_rental_hours": [2.0, 3.0, 4.0],
        "unique_vehicles_rented": [4, 3, 1],
        "utilization_rate": [0.10, 0.25, 0.05],
    }
)
USERS = pd.DataFrame(
    {
        "user_id": ["u1", "u2", "u3", "u4"],
        "first_name": ["Ada", "Bo", "Cy", "Di"],
        "last_name": ["Lovelace", "Diddley", "Young", "Prince"],
        "rental_count": [5, 2, 2, 1],
        "total_spent": [800.0, 200.0, 150.0, 50.0],
        "spend_rank": [1, 2, 3, 4],
    }
)
DAILY = pd.DataFrame(
    {
        "rental_date": pd.to_datetime(["2024-01-02", "2024-01-01", "2024-01-03"]),
        "transaction_count": [4, 3, 3],
        "total_revenue": [500.0, 400.0, 300.0],
    }
)
TREND = pd.DataFrame(
    {
        "rental_date": pd.to_datetime([f"2024-01-{d:02d}" for d in range(1, 9)]),
        "total_revenue": [100.0, 200.0, 300.0, 100.0, 200.0, 300.0, 100.0, 800.0],
    }
).assign(revenue_7day_mean=lambda f: f["total_revenue"].rolling(7, min_periods=1).mean())
CITIES = pd.DataFrame(
    {
        "city": ["Austin", "Boston"],
        "state": ["TX", "MA"],
        "total_revenue": [800.0, 400.0],
        "transaction_count": [7, 3],
        "locations": [2, 2],
    }
)


def validation(rejected_bad_amount: int = 2, valid: int = 7) -> dict:
    return {
        "datasets": {
            "users": {
                "input_rows": 5, "valid_rows": 4, "rejected_rows": 1, "deduplicated_rows": 0,
                "rejected_by_reason": {"missing_key": 1, "malformed_row": 0},
            },
            "rental_transactions": {
                "input_rows": 10, "valid_rows": valid, "rejected_rows": 3,
                "deduplicated_rows": 0,
                "rejected_by_reason": {"negative_amount": rejected_bad_amount, "unknown_user": 1},
            },
        }
    }  # fmt: skip


# ---------------------------------------------------------------- numbers and sentences


def it_sums_the_headline_from_the_kpi_tables():
    headline = insights.headline(DAILY, VEHICLE_TYPES, USERS)
    assert headline == insights.Headline(
        revenue=1200.0,
        rentals=10,
        active_users=4,
        vehicles_rented=8,
        fleet_size=17,
        first_day=date(2024, 1, 1),
        last_day=date(2024, 1, 3),
    )
    assert headline.days == 3
    assert headline.table()["value"].tolist() == [
        "$1,200",
        "10",
        "4",
        "8 of 17 in the fleet",
        "2024-01-01 to 2024-01-03 (3 days)",
    ]


def it_ranks_locations_by_revenue_then_id_and_says_who_leads():
    assert insights.top_locations(LOCATIONS, 3)["location_id"].tolist() == [1, 2, 3]
    assert insights.top_locations_takeaway(LOCATIONS, 3) == (
        "Airport (Austin) leads with $500 (41.7% of revenue); the top 3 locations together"
        " bring 91.7% of revenue from 4 locations."
    )


def it_tells_the_vehicle_type_story_as_revenue_share_against_rental_share():
    assert insights.vehicle_types_takeaway(VEHICLE_TYPES) == (
        "premium vehicles bring 50.0% of revenue from 30.0% of rentals; basic vehicles, rented"
        " most (60.0% of rentals), bring 25.0% of revenue; premium has the highest utilization"
        " (25.0% of the fleet's hours)."
    )


def it_calls_utilization_within_the_tolerance_about_the_same():
    close = VEHICLE_TYPES.assign(utilization_rate=[0.080, 0.081, 0.0788], rental_count=[2, 3, 5])
    assert insights.vehicle_types_takeaway(close) == (
        "premium vehicles bring 50.0% of revenue from 30.0% of rentals; high-end vehicles,"
        " rented most (50.0% of rentals), bring 25.0% of revenue; utilization is about the"
        " same for every type (7.9% to 8.1% of the fleet's hours)."
    )
    assert insights.about_same(100, 91) and not insights.about_same(100, 89)


def it_calls_a_change_within_the_series_spread_steady_and_beyond_it_a_rise():
    # 7-day mean on day 7: 1300/7 = 185.71; on day 8 (days 2-8): 2000/7 = 285.71 (+53.8%).
    # sd of the 8 days = 232.6; band = 2 x 232.6 x sqrt(2/7) = 248.7: +100 is noise.
    assert round(insights.trend_band(TREND), 1) == 248.7
    assert insights.daily_takeaway(TREND) == (
        "Revenue averaged $262 a day; the best day was 2024-01-08 ($800), and the 7-day mean"
        " held steady: $186 to $286 (+53.8%) is within the day-to-day spread (±$249)."
    )
    # A steady series that doubles: the change is far beyond its small spread.
    days = pd.to_datetime([f"2024-01-{d:02d}" for d in range(1, 15)])
    revenue = [100.0 + (d % 2) for d in range(7)] + [200.0 + (d % 2) for d in range(7)]
    rising = pd.DataFrame({"rental_date": days, "total_revenue": revenue}).assign(
        revenue_7day_mean=lambda f: f["total_revenue"].rolling(7, min_periods=1).mean()
    )
    assert " rose from $100 to $200 (+99.6%), beyond the day-to-day spread" in (
        insights.daily_takeaway(rising)
    )


def it_puts_the_top_spenders_against_all_users():
    assert insights.top_spenders_takeaway(USERS.head(2), USERS) == (
        "A.L. (u1) spent the most ($800 over 5 rentals); the top 2 users (50.0% of active"
        " users) bring 83.3% of revenue."
    )


def it_reads_the_spend_distribution_by_median_and_90th_percentile():
    # median of 50, 150, 200, 800 = 175; 90th percentile (linear) = 200 + 0.7 * 600 = 620.
    assert insights.spend_takeaway(USERS) == (
        "Half of the 4 active users spent under $175; the top 10% spent over $620, 3.5x the median."
    )


def it_names_the_leading_city():
    assert insights.city_takeaway(CITIES) == (
        "Austin, TX brings the most revenue ($800, 66.7%); the top 2 of 2 cities bring 100.0%."
    )


def it_reconciles_every_dataset_and_orders_reasons_by_frequency():
    table = insights.quality_table(validation())
    assert table.loc["users"].tolist() == [5, 4, 1, 0, True]
    assert table["reconciles"].all()
    assert insights.rejections(validation()).values.tolist() == [
        ["rental_transactions", "negative_amount", 2],
        ["rental_transactions", "unknown_user", 1],
        ["users", "missing_key", 1],
    ]
    assert insights.quality_takeaway(validation()) == (
        "4 of 15 input rows (26.7%) were rejected; the most common reason is negative amount"
        " (rental transactions, 2 rows); every dataset reconciles (in = valid + rejected +"
        " duplicates)."
    )


def it_says_which_dataset_does_not_reconcile():
    broken = validation(valid=6)  # 6 + 3 + 0 != 10
    assert not insights.quality_table(broken).loc["rental_transactions", "reconciles"]
    assert insights.quality_takeaway(broken).endswith("rental transactions do not reconcile.")


def it_shows_reconciliation_as_yes_or_no_with_thousands_separators():
    shown = insights.present_quality(validation(valid=6)).to_html()
    assert re.search(r">users</td>\s*<td[^>]*>5</td>", shown)
    assert shown.count(">yes</td>") == 1 and shown.count(">NO</td>") == 1


def it_formats_the_tables_for_readers():
    shown = insights.present_vehicle_types(VEHICLE_TYPES).to_html()
    assert "$600" in shown and "25.0%" in shown and "Vehicle type" in shown
    assert "high-end" in shown and "high_end" not in shown
    assert '<td class="text">premium</td>' in shown and '<td class="num">$600</td>' in shown


def it_puts_thousands_separators_on_every_count_of_a_thousand_or_more():
    """The data-quality table once showed 20012: a second Styler.format overwrote the first."""
    big = validation()
    big["datasets"]["rental_transactions"].update(
        input_rows=20_012, valid_rows=19_904, rejected_rows=102, deduplicated_rows=6
    )
    shown = insights.present_quality(big).to_html()
    assert ">20,012</td>" in shown and ">19,904</td>" in shown
    assert not re.search(r">\d{4,}</td>", shown)
    assert insights.count(1234567) == "1,234,567"
    assert [insights.money(v) for v in (12.4, 1234.5, 2_450_850.0)] == [
        "$12",
        "$1,234",
        "$2,450,850",
    ]


def it_shows_no_header_over_label_value_tables():
    shown = insights.present_headline(insights.headline(DAILY, VEHICLE_TYPES, USERS)).to_html()
    assert "<thead>" not in shown and ">value<" not in shown
    assert re.search(r"<th>Revenue</th><td[^>]*>\$1,200</td>", shown)


def it_escapes_every_value_it_renders():
    hostile = LOCATIONS.assign(
        location_name=["<script>alert(1)</script>", "Airport", "Harbor", "Mall"],
        city=['"><img src=x onerror=alert(2)>', "Austin", "Boston", "Boston"],
    )
    shown = insights.present_locations(insights.top_locations(hostile, 4)).to_html()
    assert "<script>" not in shown and "<img" not in shown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    users = USERS.assign(
        first_name=["<b>x</b>", "Bo", "Cy", "Di"], user_id=["<i>", "u2", "u3", "u4"]
    )
    assert "<b>" not in insights.present_spenders(users).to_html()
    assert "&lt;i&gt;" in insights.present_spenders(users).to_html()


def it_names_users_the_same_way_in_the_table_and_the_chart():
    table = insights.present_spenders(USERS)
    assert table.texts("User")[:2] == ["A.L. (u1)", "B.D. (u2)"]
    labels = [
        t.get_text() for t in charts.top_spenders(USERS, USERS).figure.axes[0].get_yticklabels()
    ]
    assert labels[:2] == ["#1 A.L. (u1)", "#2 B.D. (u2)"]


def it_marks_partial_months_and_compares_whole_months_only():
    answer = pd.DataFrame(
        {"month": ["2024-01", "2024-02", "2024-03"], "total_revenue": [900.0, 1000.0, 300.0],
         "transaction_count": [9, 10, 3]}
    )  # fmt: skip
    months = insights.monthly(answer, date(2024, 1, 1), date(2024, 3, 10))
    assert months["partial"].tolist() == [False, False, True]
    assert months["days_covered"].tolist() == [31, 29, 10]
    assert insights.monthly_takeaway(months) == (
        "The 2 whole months brought about the same revenue ($900 to $1,000)."
        " Mar 2024 (partial: 10 of 31 days) is partial and not compared."
    )
    shown = insights.present_months(months).to_html()
    assert "Mar 2024 (partial: 10 of 31 days)" in shown


def it_compares_weekdays_by_revenue_per_day():
    daily = pd.DataFrame(
        {"rental_date": pd.to_datetime(["2024-01-01", "2024-01-08", "2024-01-02"]),
         "total_revenue": [100.0, 120.0, 200.0]}
    )  # fmt: skip
    by_day = insights.weekdays(daily)
    assert by_day[["day", "days", "revenue_per_day"]].values.tolist() == [
        ["Monday", 2, 110.0], ["Tuesday", 1, 200.0]
    ]  # fmt: skip
    assert insights.weekday_takeaway(by_day) == (
        "Tuesday brings the most revenue ($200 a day on average), Monday the least ($110)."
    )


def it_counts_returning_users_one_way_rentals_and_averages_per_rental():
    daily = DAILY.assign(total_rental_hours=[10.0, 6.0, 4.0])
    pairs = pd.DataFrame({"pickup_location": [1, 2, 3, 4], "dropoff_location": [2, 2, 1, 3]})
    facts = insights.rental_facts(daily, USERS, pairs)
    assert (facts.returning_users, facts.one_way, facts.hours_per_rental) == (3, 3, 2.0)
    assert facts.takeaway() == (
        "An average rental lasts 2.0 hours and brings $120; 75.0% of active users rented more"
        " than once and bring 95.8% of revenue; 75.0% of rentals are one-way."
    )


def it_defines_every_number_with_the_utilization_period_in_days_and_hours():
    headline = insights.headline(DAILY, VEHICLE_TYPES, USERS)
    # basic: 2 hours x 6 rentals / (10 vehicles x 0.10) = 12 hours; the period read back.
    types = VEHICLE_TYPES.assign(total_rental_hours=[12.0, 30.0, 1.2])
    table = insights.definitions(headline, types)
    terms = table.texts("")
    assert {"Revenue", "Period", "Utilization", "About the same", "Partial month"} <= set(terms)
    utilization = dict(table.rows)["Utilization"]
    assert "12.0 hours (0.5 days) here, against the headline's 3 calendar days" in utilization
    assert "2024-01-01 to 2024-01-03, 3 days" in dict(table.rows)["Period"]


# ---------------------------------------------------------------- charts


CHARTS = {
    "top_locations": lambda: charts.top_locations(LOCATIONS),
    "vehicle_types": lambda: charts.vehicle_types(VEHICLE_TYPES),
    "daily_revenue": lambda: charts.daily_revenue(TREND),
    "top_spenders": lambda: charts.top_spenders(USERS, USERS),
    "spend_distribution": lambda: charts.spend_distribution(USERS),
    "revenue_by_city": lambda: charts.revenue_by_city(CITIES),
    "rejections": lambda: charts.rejections(validation()),
    "monthly_revenue": lambda: charts.monthly_revenue(
        insights.monthly(
            pd.DataFrame(
                {
                    "month": ["2024-01", "2024-02"],
                    "total_revenue": [9e3, 4e3],
                    "transaction_count": [9, 4],
                }
            ),
            date(2024, 1, 1),
            date(2024, 2, 10),
        )
    ),
    "weekday_revenue": lambda: charts.weekday_revenue(insights.weekdays(DAILY)),
    "timeline": lambda: charts.timeline(
        pd.DataFrame({"stage": ["a", "b"], "start_s": [0.0, 2.0], "end_s": [2.0, 8.0]})
    ),
}
UNIT = re.compile(
    r"\((USD|count|s|%|UTC|USD per day|USD per month|USD per day, average|% of fleet hours)\)"
)


@pytest.mark.parametrize("name", CHARTS)
def it_draws_every_chart_with_title_labels_units_and_takeaway(name):
    chart = CHARTS[name]()
    assert chart.title
    assert "_" not in chart.title
    for ax in chart.figure.axes:
        assert ax.get_title(), f"{name}: a panel without a title"
        assert ax.get_xlabel() and ax.get_ylabel(), f"{name}: an unlabelled axis"
        assert UNIT.search(ax.get_xlabel() + ax.get_ylabel()), f"{name}: no unit on any axis"
    assert chart.takeaway.endswith(".") and len(chart.takeaway) > 30
    assert chart.png()[:8] == b"\x89PNG\r\n\x1a\n"


def it_embeds_the_picture_and_its_takeaway_in_the_html():
    chart = charts.top_locations(LOCATIONS)
    shown = chart._repr_html_()
    data = re.search(r'<img src="data:image/png;base64,([^"]+)"', shown).group(1)
    assert base64.b64decode(data)[:4] == b"\x89PNG"
    assert "<figcaption" in shown and html.escape(chart.takeaway) in shown


def it_says_which_stage_took_longest():
    stages = pd.DataFrame({"stage": ["a", "b"], "start_s": [0.0, 2.0], "end_s": [2.0, 8.0]})
    assert charts.timeline(stages).takeaway == (
        "The run took 8.0 s; b was the longest stage (6.0 s, 75.0% of the run)."
    )


def it_groups_rejections_by_dataset_and_caps_the_reasons():
    many = validation()
    many["datasets"]["rental_transactions"]["rejected_by_reason"] = {
        f"reason_{i}": 10 - i for i in range(7)
    }
    frame = insights.grouped_rejections(many, top=4)
    assert frame.values.tolist() == [
        ["users", "missing_key", 1],
        ["rental_transactions", "reason_0", 10], ["rental_transactions", "reason_1", 9],
        ["rental_transactions", "reason_2", 8], ["rental_transactions", "reason_3", 7],
        ["rental_transactions", "other (3 reasons)", 15],
    ]  # fmt: skip
    chart = charts.rejections(many, top=4)
    labels = [t.get_text() for t in chart.figure.axes[0].get_yticklabels()]
    assert labels == ["missing key", "reason 0", "reason 1", "reason 2", "reason 3",
                      "other (3 reasons)"]  # fmt: skip


def it_formats_money_ticks_for_scanning():
    assert [charts._usd(v) for v in (950, 12_000, 1_250_000)] == ["$950", "$12k", "$1.25M"]


def it_never_gives_two_money_ticks_the_same_label():
    assert [charts._usd(v) for v in (0, 0.5, 1_500, 2_000, 2_500, -1_500)] == [
        "$0", "$0.5", "$1.5k", "$2k", "$2.5k", "-$1.5k"
    ]  # fmt: skip
    chart = charts.daily_revenue(TREND.assign(total_revenue=[1_500.0, 2_000.0] * 4))
    chart.png()
    ticks = [t.get_text() for t in chart.figure.axes[0].get_yticklabels()]
    assert len(set(ticks)) == len(ticks) and "$1.5k" in ticks, ticks


# ---------------------------------------------------------------- what a run accepts, shown

# Years a run accepts (docs/validation.md) beyond pandas' nanosecond range (1677-2262).
FAR_DAYS = [date(1, 6, 1), date(1600, 2, 29), date(2300, 1, 1), date(9999, 12, 31)]


def far_daily(dates: object) -> pd.DataFrame:
    return pd.DataFrame(
        {"rental_date": dates, "transaction_count": [1, 2, 1, 1],
         "total_revenue": [10.0, 20.0, 30.0, 40.0], "total_rental_hours": [2.0, 4.0, 3.0, 1.0]}
    )  # fmt: skip


@pytest.mark.parametrize(
    "dates", [FAR_DAYS, np.array(FAR_DAYS, dtype="datetime64[us]")], ids=["date", "datetime64"]
)
def it_reports_rentals_of_any_year_a_run_accepts(dates):
    """As the query answers (dates) and the catalog's tables (DuckDB's datetime64[us]) give them."""
    daily = far_daily(dates)
    headline = insights.headline(daily, VEHICLE_TYPES, USERS)
    assert headline.table()["value"].tolist()[-1] == "0001-06-01 to 9999-12-31 (3,651,908 days)"
    by_day = insights.weekdays(daily)
    assert by_day[["day", "days"]].values.tolist() == [["Monday", 1], ["Tuesday", 1],
                                                       ["Friday", 2]]  # fmt: skip
    trend = daily.assign(revenue_7day_mean=daily["total_revenue"].expanding().mean())
    assert "the best day was 9999-12-31 ($40)" in insights.daily_takeaway(trend)
    answer = pd.DataFrame(
        {"month": ["0001-06", "1600-02", "2300-01", "9999-12"],
         "total_revenue": daily["total_revenue"], "transaction_count": daily["transaction_count"]}
    )  # fmt: skip
    months = insights.monthly(answer, headline.first_day, headline.last_day)
    assert insights.present_months(months).texts("Month") == [
        "Jun 0001", "Feb 1600", "Jan 2300", "Dec 9999"
    ]  # fmt: skip
    assert months["days_in_month"].tolist() == [30, 29, 31, 31]
    for chart in (charts.daily_revenue(trend), charts.monthly_revenue(months),
                  charts.weekday_revenue(by_day)):  # fmt: skip
        assert chart.png()[:4] == b"\x89PNG"


NAN = float("nan")
NO_DAILY = pd.DataFrame(
    {"rental_date": pd.Series([], dtype="datetime64[us]"), "transaction_count": [],
     "total_revenue": [], "total_rental_hours": []}
)  # fmt: skip
IDLE_TYPES = VEHICLE_TYPES.assign(
    rental_count=0, total_revenue=0.0, avg_revenue_per_rental=NAN, avg_rental_hours=NAN,
    unique_vehicles_rented=0, utilization_rate=NAN,
)  # fmt: skip
IDLE_LOCATIONS = LOCATIONS.assign(
    total_revenue=0.0, transaction_count=0, avg_transaction_amount=NAN, unique_users=0
)


def it_reports_zero_valid_rentals_in_words_and_empty_charts():
    """A run may end with no valid rental (docs/validation.md, "Empty tables")."""
    no_users, no_trend = USERS.iloc[0:0], NO_DAILY.assign(revenue_7day_mean=[])
    headline = insights.headline(NO_DAILY, IDLE_TYPES, no_users)
    assert headline.table()["value"].tolist() == ["$0", "0", "0", "0 of 17 in the fleet",
                                                  "no rentals"]  # fmt: skip
    facts = insights.rental_facts(NO_DAILY, no_users)
    assert dict(facts.table().rows)["Average rental"] == "no rentals"
    months = insights.monthly(pd.DataFrame(columns=["month", "total_revenue",
                                                    "transaction_count"]), None, None)  # fmt: skip
    cities = CITIES.assign(total_revenue=0.0, transaction_count=0)
    assert [
        facts.takeaway(),
        insights.top_locations_takeaway(IDLE_LOCATIONS),
        insights.vehicle_types_takeaway(IDLE_TYPES),
        insights.daily_takeaway(no_trend),
        insights.weekday_takeaway(insights.weekdays(NO_DAILY)),
        insights.top_spenders_takeaway(no_users, no_users),
        insights.spend_takeaway(no_users),
        insights.city_takeaway(cities),
    ] == [
        "There are no valid rentals: no averages, returning users or one-way rentals.",
        "No location has revenue: there are no valid rentals.",
        "No vehicle type has revenue: there are no valid rentals.",
        "No day has revenue: there are no valid rentals.",
        "No weekday has revenue: there are no valid rentals.",
        "No user has revenue: there are no valid rentals.",
        "No user has revenue: there are no valid rentals.",
        "No city has revenue: there are no valid rentals.",
    ]
    assert "NaN" not in insights.present_vehicle_types(IDLE_TYPES).to_html()
    for chart in (
        charts.top_locations(IDLE_LOCATIONS), charts.vehicle_types(IDLE_TYPES),
        charts.daily_revenue(no_trend), charts.monthly_revenue(months),
        charts.weekday_revenue(insights.weekdays(NO_DAILY)),
        charts.top_spenders(no_users, no_users), charts.spend_distribution(no_users),
        charts.revenue_by_city(cities),
    ):  # fmt: skip
        assert chart.png()[:4] == b"\x89PNG"


def it_shows_an_average_over_no_rentals_as_not_available():
    """One rental: the other types' and locations' averages are null (SPEC §4), not "$nan"."""
    one = IDLE_TYPES.assign(
        rental_count=[1, 0, 0], total_revenue=[370.0, 0.0, 0.0],
        avg_revenue_per_rental=[370.0, NAN, NAN], avg_rental_hours=[37.0, NAN, NAN],
        utilization_rate=[0.077, 0.0, 0.0],
    )  # fmt: skip
    table = insights.present_vehicle_types(one)
    assert table.texts("Revenue per rental") == ["$370", "n/a", "n/a"]
    assert table.texts("Hours per rental") == ["37.0", "n/a", "n/a"]
    shown = insights.present_locations(insights.top_locations(IDLE_LOCATIONS))
    assert shown.texts("Revenue per rental") == ["n/a"] * 4


def it_gives_no_ratio_to_a_median_spend_of_zero():
    assert insights.spend_takeaway(USERS.assign(total_spent=0.0)) == (
        "Half of the 4 active users spent under $0; the top 10% spent over $0."
    )


def it_explains_a_utilization_above_100_percent():
    """All rentals on one day: the period is short, and overlapping rentals of a vehicle count
    more rented hours than the fleet has."""
    busy = VEHICLE_TYPES.assign(utilization_rate=[4.036, 4.776, 1.2])
    assert insights.vehicle_types_takeaway(busy).endswith(
        "premium has the highest utilization (477.6% of the fleet's hours; above 100%: some"
        " vehicles have rentals that overlap in time, so the data counts more rented hours than"
        " the fleet has)."
    )


# ---------------------------------------------------------------- names from the data, shown


DOLLARS = ["Lot $\\foo$ Denver", "Rent $5 & Save $10 Denver"]


def drawn(labels) -> list[str]:
    """The text Matplotlib draws for each label: mathtext between two ``$``, else literally."""
    return [text for text, _math in (t._preprocess_math(t.get_text()) for t in labels)]


def it_draws_dollar_signs_in_names_literally():
    named = LOCATIONS.assign(location_name=[DOLLARS[0], DOLLARS[1], "Harbor", "Mall"],
                             city=["Denver", "Denver", "Boston", "Boston"])  # fmt: skip
    chart = charts.top_locations(named, 2)
    assert chart.png()[:4] == b"\x89PNG"  # "Lot $\\foo$" failed the whole report
    assert drawn(chart.figure.axes[0].get_yticklabels()) == [DOLLARS[1], "Harbor (Boston)"]
    cities = CITIES.assign(city=DOLLARS, state=["CO", "C$"])
    chart = charts.revenue_by_city(cities)
    assert chart.png()[:4] == b"\x89PNG"
    assert drawn(chart.figure.axes[0].get_yticklabels()) == [f"{DOLLARS[0]}, CO",
                                                             f"{DOLLARS[1]}, C$"]  # fmt: skip
    types = VEHICLE_TYPES.assign(vehicle_type=["$a$", "$b", "c$"])
    chart = charts.vehicle_types(types)
    assert chart.png()[:4] == b"\x89PNG"
    for ax in chart.figure.axes:
        assert drawn(ax.get_xticklabels()) == ["$b", "$a$", "c$"]


RLO, LRE, PDF = "\u202e", "\u202a", "\u202c"


def it_keeps_bidi_controls_in_names_from_reordering_the_text_around_them():
    """A name holding U+202E (right-to-left override) showed "$2,660" after it as "066,2$"."""
    forged = LOCATIONS.assign(location_name=["Dock", f"Air{RLO}port", "Harbor", "Mall"],
                              city=["Austin", f"Aus{LRE}tin{PDF}", "Boston", "Boston"])  # fmt: skip
    assert insights.top_locations_takeaway(forged, 3) == (
        "Airport (Austin) leads with $500 (41.7% of revenue); the top 3 locations together"
        " bring 91.7% of revenue from 4 locations."
    )
    assert insights.present_locations(insights.top_locations(forged, 1)).texts("Location") == [
        "Airport (Austin)"
    ]
    chart = charts.top_locations(forged, 1)
    assert drawn(chart.figure.axes[0].get_yticklabels()) == ["Airport (Austin)"]
    users = USERS.assign(user_id=[f"u{RLO}1", "u2", "u3", "u4"])
    assert insights.present_spenders(users).texts("User")[0] == "A.L. (u1)"
    cities = CITIES.assign(city=[f"Aus{RLO}tin", "Boston"])
    assert insights.city_takeaway(cities).startswith("Austin, TX brings the most revenue ($800,")


def it_isolates_a_name_in_a_right_to_left_script_from_the_numbers_after_it():
    hebrew = LOCATIONS.assign(location_name=["Dock", "שלום", "Harbor", "Mall"])
    assert insights.top_locations_takeaway(hebrew, 3).startswith(
        "\u2068שלום\u2069 (Austin) leads with $500 (41.7% of revenue)"
    )
    chart = charts.top_locations(hebrew, 1)  # Matplotlib has no bidi: no isolates drawn
    assert drawn(chart.figure.axes[0].get_yticklabels()) == ["שלום (Austin)"]


def it_shows_a_missing_city_as_no_city_not_none():
    assert insights.location_label("Lot 7", None) == "Lot 7"
    assert insights.location_label("Lot 7", NAN) == "Lot 7"
    cities = CITIES.assign(city=[None, "Boston"], state=["WA", "MA"])
    assert insights.city_takeaway(cities) == (
        "(no city), WA brings the most revenue ($800, 66.7%); the top 2 of 2 cities bring 100.0%."
    )
    labels = charts.revenue_by_city(cities).figure.axes[0].get_yticklabels()
    assert [t.get_text() for t in labels] == ["(no city), WA", "Boston, MA"]
    table = insights.present_locations(LOCATIONS.assign(city=None).head(1))
    assert table.texts("Location") == ["Dock"]


# ---------------------------------------------------------------- the state machine picture

TINY = {
    "StartAt": "Work",
    "States": {
        "Work": {"Type": "Task", "Next": "Check", "Catch": [{"Next": "Alarm"}]},
        "Check": {"Type": "Choice", "Choices": [{"Next": "Work"}], "Default": "Done"},
        "Done": {"Type": "Succeed"},
        "Alarm": {"Type": "Task", "Next": "Failed"},
        "Failed": {"Type": "Fail"},
    },
}


def it_lays_out_a_small_machine_with_its_loop_and_failure_path():
    plan = state_diagram.layout(TINY)
    assert plan.failure == {"Alarm", "Failed"}
    assert plan.back_edges == {("Check", "Work")}
    assert plan.positions["Work"] == (0.0, 0)
    assert plan.positions["Check"] == (0.0, 1)
    assert plan.positions["Done"] == (0.0, 2)
    assert plan.positions["Alarm"][0] > 0 and plan.positions["Failed"][1] == 2


def it_draws_the_pipeline_with_its_failure_path_in_red():
    definition = statemachine.load_template()
    plan = state_diagram.layout(definition)
    assert plan.failure == {
        "TerminateClusterOnFailure",
        "CrawlerFailed",
        "CrawlerTimedOut",
        "NotifyFailure",
        "PipelineFailed",
    }
    assert plan.back_edges == {("PollBudgetLeft", "WaitForCrawler")}
    spine = [n for n, (column, _) in plan.positions.items() if column == 0.0]
    assert spine[0] == "CreateCluster" and spine[-1] == "Succeeded"
    chart = state_diagram.draw(definition)
    arrows = [p for p in chart.figure.axes[0].patches if isinstance(p, FancyArrowPatch)]
    into_failure = [e for e in statemachine.edges(definition) if e.target in plan.failure]
    red = [a for a in arrows if a.get_edgecolor()[:3] == (214 / 255, 39 / 255, 40 / 255)]
    assert len(arrows) == len(statemachine.edges(definition))
    assert len(red) == len(into_failure) == 18
    assert chart.takeaway.startswith("28 states and 44 transitions; 18 of them lead into")
