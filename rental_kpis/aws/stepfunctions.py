"""The state machine: create or update it from ``stepfunctions/``, start a run, follow it state
by state, read an execution's history, delete it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from rental_kpis.aws import statemachine
from rental_kpis.aws.emr import ClusterSpec
from rental_kpis.aws.names import Deployment


def ensure_state_machine(
    deployment: Deployment, session: boto3.Session, spec: ClusterSpec | None = None
) -> list[str]:
    sfn = session.client("stepfunctions")
    definition = statemachine.render(deployment, spec)
    role = deployment.role_arn(deployment.stepfunctions_role)
    try:
        current = sfn.describe_state_machine(stateMachineArn=deployment.state_machine_arn)
    except sfn.exceptions.StateMachineDoesNotExist:
        sfn.create_state_machine(
            name=deployment.state_machine,
            definition=json.dumps(definition),
            roleArn=role,
            tags=[{"key": "project", "value": "rental_kpis"}],
        )
        return [f"state machine {deployment.state_machine}"]
    if json.loads(current["definition"]) != definition or current["roleArn"] != role:
        sfn.update_state_machine(
            stateMachineArn=deployment.state_machine_arn,
            definition=json.dumps(definition),
            roleArn=role,
        )
        return [f"state machine {deployment.state_machine} definition"]
    return []


@dataclass
class RunOutcome:
    execution_arn: str
    status: str
    error: str | None
    cause: str | None
    states: list[tuple[str, float]]
    events: list[dict[str, Any]] = field(default_factory=list)  # the history, as last read


def start_run(deployment: Deployment, session: boto3.Session, run_id: str) -> str:
    sfn = session.client("stepfunctions")
    return sfn.start_execution(
        stateMachineArn=deployment.state_machine_arn, name=run_id, input="{}"
    )["executionArn"]


def follow_run(
    execution_arn: str,
    session: boto3.Session,
    *,
    poll_seconds: float = 10.0,
    timeout_seconds: float = 4 * 3600,
    on_state: Callable[[str, float], None] | None = None,
) -> RunOutcome:
    """Poll the execution, reporting each state as it is entered with the time since start.
    After ``timeout_seconds`` it returns with status RUNNING; the execution carries on."""
    sfn = session.client("stepfunctions")
    started = time.monotonic()
    seen = 0
    states: list[tuple[str, float]] = []
    while True:
        desc = sfn.describe_execution(executionArn=execution_arn)  # before the history: a
        events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        begin = desc["startDate"]
        for event in events[seen:]:
            details = event.get("stateEnteredEventDetails")
            if details:
                elapsed = (event["timestamp"] - begin).total_seconds()
                states.append((details["name"], elapsed))
                if on_state:
                    on_state(details["name"], elapsed)
        seen = len(events)
        if desc["status"] != "RUNNING":  # finished run's history is then complete
            return RunOutcome(
                execution_arn, desc["status"], desc.get("error"), desc.get("cause"), states, events
            )
        if time.monotonic() - started > timeout_seconds:
            # Stop following, not the run: the state machine goes on (and cleans up) by itself.
            return RunOutcome(execution_arn, "RUNNING", None, None, states, events)
        time.sleep(poll_seconds)


def history(deployment: Deployment, session: boto3.Session, run_id: str) -> list[dict[str, Any]]:
    """Every event of the run's execution, oldest first."""
    sfn = session.client("stepfunctions")
    pages = sfn.get_paginator("get_execution_history").paginate(
        executionArn=deployment.execution_arn(run_id)
    )
    return [e for page in pages for e in page["events"]]


def describe(deployment: Deployment, session: boto3.Session, run_id: str) -> dict[str, Any]:
    sfn = session.client("stepfunctions")
    return sfn.describe_execution(executionArn=deployment.execution_arn(run_id))


def latest_succeeded(deployment: Deployment, session: boto3.Session) -> str | None:
    """The run id (execution name) of the newest succeeded execution, or None."""
    sfn = session.client("stepfunctions")
    runs = sfn.list_executions(
        stateMachineArn=deployment.state_machine_arn, statusFilter="SUCCEEDED"
    )["executions"]
    return max(runs, key=lambda r: r["startDate"])["name"] if runs else None


def delete_state_machine(deployment: Deployment, session: boto3.Session) -> list[str]:
    sfn = session.client("stepfunctions")
    try:
        sfn.describe_state_machine(stateMachineArn=deployment.state_machine_arn)
    except sfn.exceptions.StateMachineDoesNotExist:
        return []
    sfn.delete_state_machine(stateMachineArn=deployment.state_machine_arn)
    return [f"state machine {deployment.state_machine}"]
