"""The stage spine: one list of stage names shared by the local runner, the Step Functions
state machine and the notebooks. Import-light (stdlib only), so every backend can use it."""

from __future__ import annotations

from dataclasses import dataclass

from rental_kpis.errors import UnknownName


@dataclass(frozen=True)
class Stage:
    name: str  # the step / stage id: emr_steps/<name>.py for Spark stages
    state: str  # the Step Functions state that runs it
    spark: bool  # a spark-submit step (EMR step on AWS)
    description: str


STAGES: tuple[Stage, ...] = (
    Stage("validate_raw", "ValidateRaw", True, "raw CSV -> curated + rejected (SPEC §3)"),
    Stage(
        "vehicle_location_metrics",
        "VehicleLocationMetrics",
        True,
        "location_performance, vehicle_type_performance (SPEC §4)",
    ),
    Stage(
        "user_transaction_metrics",
        "UserTransactionMetrics",
        True,
        "user_metrics, daily_metrics (SPEC §4)",
    ),
    Stage("crawl", "StartCrawler", False, "catalog the processed zone (SPEC §5)"),
    Stage("queries", "RunQueries", False, "named queries over the catalog (SPEC §5)"),
    Stage("notify", "NotifySuccess", False, "tell the operator how the run went"),
)

SPARK_STAGES: tuple[str, ...] = tuple(s.name for s in STAGES if s.spark)


def stage(name: str) -> Stage:
    for candidate in STAGES:
        if candidate.name == name:
            return candidate
    raise UnknownName(f"unknown stage {name!r}; stages are {', '.join(s.name for s in STAGES)}")
