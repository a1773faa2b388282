"""The state machine: create or update it from ``stepfunctions/``, start a run, follow it state
by state, read an execution's history, delete it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from rental_kpis.aws import emr, statemachine
from rental_kpis.aws.emr import ClusterSpec
from rental_kpis.aws.iam import Propagation
from rental_kpis.aws.names import PROJECT_TAG, Deployment


def ensure_state_machine(
    deployment: Deployment,
    session: boto3.Session,
    spec: ClusterSpec | None = None,
    propagation: Propagation | None = None,
) -> list[str]:
    """Create or update the state machine. Step Functions checks that it can assume the role
    when the machine is created or updated, so both calls wait out IAM propagation."""
    propagation = propagation or Propagation()
    sfn = session.client("stepfunctions")
    definition = statemachine.render(deployment, spec)
    role = deployment.role_arn(deployment.stepfunctions_role)
    try:
        current = sfn.describe_state_machine(stateMachineArn=deployment.state_machine_arn)
    except sfn.exceptions.StateMachineDoesNotExist:
        propagation.retry(
            lambda: sfn.create_state_machine(
                name=deployment.state_machine,
                definition=json.dumps(definition),
                roleArn=role,
                tags=[{"key": PROJECT_TAG[0], "value": PROJECT_TAG[1]}],
            ),
            f"creating state machine {deployment.state_machine}",
        )
        return [f"state machine {deployment.state_machine}"]
    if json.loads(current["definition"]) != definition or current["roleArn"] != role:
        propagation.retry(
            lambda: sfn.update_state_machine(
                stateMachineArn=deployment.state_machine_arn,
                definition=json.dumps(definition),
                roleArn=role,
            ),
            f"updating state machine {deployment.state_machine}",
        )
        return [f"state machine {deployment.state_machine} definition"]
    return []


def use_subnet(deployment: Deployment, session: boto3.Session, subnet_id: str) -> list[str]:
    """Launch this deployment's clusters into ``subnet_id`` from now on: the deployed
    definition's CreateCluster gets ``Ec2SubnetId``, everything else is kept as setup made it."""
    ClusterSpec(subnet_id=subnet_id)  # the same check as setup's
    sfn = session.client("stepfunctions")
    current = sfn.describe_state_machine(stateMachineArn=deployment.state_machine_arn)
    definition = json.loads(current["definition"])
    instances = definition["States"]["CreateCluster"]["Parameters"]["Instances"]
    if instances.get("Ec2SubnetId") == subnet_id:
        return []
    instances["Ec2SubnetId"] = subnet_id
    sfn.update_state_machine(
        stateMachineArn=deployment.state_machine_arn, definition=json.dumps(definition)
    )
    return [f"state machine {deployment.state_machine}: clusters launch into {subnet_id}"]


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


def execution_exists(deployment: Deployment, session: boto3.Session, run_id: str) -> bool:
    """True when the state machine ran ``run_id`` (notebook 03 or ``aws run``); a run of
    notebook 02 drove EMR directly and has no execution."""
    sfn = session.client("stepfunctions")
    try:
        sfn.describe_execution(executionArn=deployment.execution_arn(run_id))
    except (sfn.exceptions.ExecutionDoesNotExist, sfn.exceptions.StateMachineDoesNotExist):
        return False
    return True


def cluster_id_of(events: list[dict[str, Any]]) -> str | None:
    """The cluster a run created: the output of its CreateCluster task, from the history."""
    entered: str | None = None
    for event in events:
        if "stateEnteredEventDetails" in event:
            entered = event["stateEnteredEventDetails"]["name"]
        details = event.get("taskSucceededEventDetails")
        if details and entered == "CreateCluster":
            return json.loads(details.get("output") or "{}").get("ClusterId")
    return None


def terminate_lost_clusters(
    deployment: Deployment, session: boto3.Session, run_id: str, outcome: RunOutcome
) -> list[str]:
    """After a run has ended: terminate the clusters it started whose id it never learnt, one
    line each.

    CreateCluster may fail or time out after EMR accepted RunJobFlow, and a failed Task's error
    output holds only Error and Cause ("Error handling in Step Functions"), so the run has no
    id to terminate; and when its retry then succeeded, the run went on with a second cluster.
    Every cluster the state machine creates is tagged with its run id (``names.RUN_ID_TAG``):
    this finds the deployment's active clusters with that tag (``emr.run_clusters``), less the
    one the run knows (its own terminate task stops that one), and asks EMR to terminate them.
    Nothing is done for a run still running."""
    if outcome.status == "RUNNING":
        return []
    known = cluster_id_of(outcome.events)
    ids = [i for i in emr.run_clusters(deployment, run_id, session) if i != known]
    if not ids:
        return []
    session.client("emr").terminate_job_flows(JobFlowIds=ids)
    return [
        f"cluster {cluster_id}: terminating (started by run {run_id}, which never learnt its id)"
        for cluster_id in ids
    ]


def stop_running(deployment: Deployment, session: boto3.Session) -> list[str]:
    """Stop every RUNNING execution, first thing in teardown: a running one would go on to
    create or use a cluster. Stopping does not terminate its cluster (Step Functions guide,
    "Create and manage Amazon EMR clusters with Step Functions"): teardown does that next."""
    sfn = session.client("stepfunctions")
    try:
        pages = sfn.get_paginator("list_executions").paginate(
            stateMachineArn=deployment.state_machine_arn, statusFilter="RUNNING"
        )
        running = [e for page in pages for e in page["executions"]]
    except sfn.exceptions.StateMachineDoesNotExist:
        return []
    for execution in running:
        sfn.stop_execution(
            executionArn=execution["executionArn"],
            error="TeardownStopped",
            cause="rental-kpis aws teardown stopped this run",
        )
    return [f"running execution {e['name']} (stopped)" for e in running]


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
