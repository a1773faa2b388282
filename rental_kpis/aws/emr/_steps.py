"""Steps: submit the Spark steps to a cluster, follow them, and find a failed step's reason
and log."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rental_kpis.aws.emr._client import client
from rental_kpis.aws.emr._requests import step_config
from rental_kpis.aws.names import Deployment
from rental_kpis.errors import EmrStepFailed
from rental_kpis.stages import SPARK_STAGES

if TYPE_CHECKING:
    import boto3


def add_steps(
    deployment: Deployment,
    cluster_id: str,
    run_id: str,
    steps: tuple[str, ...] = SPARK_STAGES,
    session: boto3.Session | None = None,
) -> dict[str, str]:
    """Submit the steps in order; returns step name -> step id."""
    emr = client(deployment, session)
    configs = [step_config(deployment, step, run_id) for step in steps]
    ids = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=configs)["StepIds"]
    return dict(zip(steps, ids, strict=True))


FINAL_STEP_STATES = {"COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED"}


def wait_for_steps(
    deployment: Deployment,
    cluster_id: str,
    step_ids: dict[str, str],
    *,
    poll_seconds: float = 30.0,
    timeout_seconds: float = 3 * 3600,
    on_status: Callable[[str, str, float], None] | None = None,
    session: boto3.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str]:
    """Poll until every step has ended; reports each change of state as (step, state, elapsed)."""
    emr = client(deployment, session)
    started = time.monotonic()
    seen: dict[str, str] = {}
    while True:
        for name, step_id in step_ids.items():
            state = emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Status"][
                "State"
            ]
            if seen.get(name) != state:
                seen[name] = state
                if on_status:
                    on_status(name, state, time.monotonic() - started)
        if all(state in FINAL_STEP_STATES for state in seen.values()):
            return seen
        if time.monotonic() - started > timeout_seconds:
            raise TimeoutError(f"steps still running after {timeout_seconds:.0f} s: {seen}")
        sleep(poll_seconds)


def step_log_location(deployment: Deployment, cluster_id: str, step_id: str) -> str:
    """Where EMR puts a step's stdout/stderr (``LogUri`` + cluster + step id)."""
    return deployment.lake.uri("emr-logs", cluster_id, "steps", step_id) + "/"


def step_statuses(
    deployment: Deployment,
    cluster_id: str,
    step_ids: dict[str, str],
    session: boto3.Session | None = None,
) -> list[dict[str, Any]]:
    """Each step's state, start and end, and, for a failed one, EMR's reason and its log."""
    emr = client(deployment, session)
    rows = []
    for step, step_id in step_ids.items():
        status = emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Status"]
        times = status.get("Timeline", {})
        details = status.get("FailureDetails", {})
        rows.append(
            {
                "stage": step,
                "status": status["State"].lower(),
                "started": times.get("StartDateTime") or times.get("CreationDateTime"),
                "finished": times.get("EndDateTime"),
                "reason": details.get("Message") or details.get("Reason", ""),
                "log": details.get("LogFile") or step_log_location(deployment, cluster_id, step_id),
            }
        )
    return rows


def require_completed(
    deployment: Deployment,
    cluster_id: str,
    step_ids: dict[str, str],
    session: boto3.Session | None = None,
) -> list[dict[str, Any]]:
    """The steps' statuses; raises ``EmrStepFailed`` (reason and log) for the first step that
    did not end COMPLETED, so nothing downstream runs on missing or stale input."""
    rows = step_statuses(deployment, cluster_id, step_ids, session)
    for row in rows:
        if row["status"] != "completed":
            raise EmrStepFailed(row["stage"], row["status"].upper(), row["reason"], row["log"])
    return rows
