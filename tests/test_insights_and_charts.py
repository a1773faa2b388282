"""The report's numbers, sentences and charts on small hand-made tables (no Spark)."""

from __future__ import annotations

import base64
import html
import re
from datetime import date

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


def it_names_the_most_rented_and_the_busiest_vehicle_type():
    assert insights.vehicle_types_takeaway(VEHICLE_TYPES) == (
        "basic vehicles are rented most (6 rentals, 60.0%); premium has the highest"
        " utilization: 25.0% of the fleet's hours."
    )
    same = VEHICLE_TYPES.assign(utilization_rate=[0.3, 0.2, 0.1])
    assert insights.vehicle_types_takeaway(same) == (
        "basic vehicles are rented most (6 rentals, 60.0%) and have the highest utilization:"
        " 30.0% of the fleet's hours."
    )


def it_describes_the_daily_trend_from_the_rolling_mean():
    # 7-day mean on day 7: 1300/7 = 185.71; on day 8 (days 2-8): 2000/7 = 285.71 (+53.8%).
    assert insights.daily_takeaway(TREND) == (
        "Revenue averaged $262 a day; the best day was 2024-01-08 ($800), and the 7-day mean"
        " rose from $186 to $286 (+53.8%)."
    )


def it_puts_the_top_spenders_against_all_users():
    assert insights.top_spenders_takeaway(USERS.head(2), USERS) == (
        "Ada Lovelace spent the most ($800 over 5 rentals); the top 2 users (50.0% of active"
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
        "4 of 15 input rows (26.7%) were rejected; the most common reason is negative_amount"
        " (2 rows); every dataset reconciles (in = valid + rejected + duplicates)."
    )


def it_says_which_dataset_does_not_reconcile():
    broken = validation(valid=6)  # 6 + 3 + 0 != 10
    assert not insights.quality_table(broken).loc["rental_transactions", "reconciles"]
    assert insights.quality_takeaway(broken).endswith("rental_transactions do not reconcile.")


def it_shows_reconciliation_as_yes_or_no_with_thousands_separators():
    shown = insights.present_quality(validation(valid=6)).to_html()
    assert re.search(r">users</td>\s*<td[^>]*>5</td>", shown)
    assert shown.count(">yes</td>") == 1 and shown.count(">NO</td>") == 1


def it_formats_the_tables_for_readers():
    shown = insights.present_vehicle_types(VEHICLE_TYPES).to_html()
    assert "600.00" in shown and "25.0%" in shown and "vehicle type" in shown


# ---------------------------------------------------------------- charts


CHARTS = {
    "top_locations": lambda: charts.top_locations(LOCATIONS),
    "vehicle_types": lambda: charts.vehicle_types(VEHICLE_TYPES),
    "daily_revenue": lambda: charts.daily_revenue(TREND),
    "top_spenders": lambda: charts.top_spenders(USERS, USERS),
    "spend_distribution": lambda: charts.spend_distribution(USERS),
    "revenue_by_city": lambda: charts.revenue_by_city(CITIES),
    "rejections": lambda: charts.rejections(validation()),
    "timeline": lambda: charts.timeline(
        pd.DataFrame({"stage": ["a", "b"], "start_s": [0.0, 2.0], "end_s": [2.0, 8.0]})
    ),
}
UNIT = re.compile(r"\((USD|count|s|%|UTC|USD per day|% of fleet hours)\)")


@pytest.mark.parametrize("name", CHARTS)
def it_draws_every_chart_with_title_labels_units_and_takeaway(name):
    chart = CHARTS[name]()
    assert chart.title
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


def it_formats_money_ticks_for_scanning():
    assert [charts._usd(v) for v in (950, 12_000, 1_250_000)] == ["$950", "$12k", "$1.2M"]


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
    assert len(red) == len(into_failure) == 16
    assert chart.takeaway.startswith("23 states and 36 transitions; 16 of them lead into")
