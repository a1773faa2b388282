"""The Step Functions role: one entry per Task integration of the state machine, including the
calls a ``.sync`` integration makes behind it and its EventBridge managed rule, as the Step
Functions developer guide lists them ("IAM policies for Amazon EMR", "IAM policies for Amazon
Athena calls in Step Functions", "How Step Functions generates IAM policies for integrated
services"). A Task whose integration has no entry raises, so a new Task cannot go without its
permissions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rental_kpis.aws.names import Deployment
from rental_kpis.aws.permissions._calls import (
    PROJECT_CLUSTER,
    SAMPLE_RUN_ID,
    SFN,
    Arns,
    Call,
    call_rows,
)
from rental_kpis.aws.permissions._shared_rows import athena_on_behalf, create_cluster_extras

# (deployment, ARNs, state name, state) -> the rows of that Task
Integration = Callable[[Deployment, Arns, str, Mapping[str, Any]], list[Call]]


def _sfn_create_cluster(
    d: Deployment, arn: Arns, state: str, task: Mapping[str, Any]
) -> list[Call]:
    cause = f"state {state} (elasticmapreduce:createCluster)"
    rows = call_rows(SFN, cause, ["elasticmapreduce:RunJobFlow"], ["*"])
    rows += call_rows(
        SFN,
        cause,
        ["elasticmapreduce:DescribeCluster", "elasticmapreduce:TerminateJobFlows"],
        [arn.cluster],
        PROJECT_CLUSTER,
    )
    tags = {
        t["Key"]: t.get("Value", SAMPLE_RUN_ID) for t in task.get("Parameters", {}).get("Tags", [])
    }
    return rows + create_cluster_extras(SFN, d, arn, cause, tags)


def _sfn_idle_timeout(d: Deployment, arn: Arns, state: str, task: Mapping[str, Any]) -> list[Call]:
    """EMR's PutAutoTerminationPolicy through the AWS SDK integration, on project clusters."""
    cause = f"state {state} (aws-sdk:emr:putAutoTerminationPolicy)"
    return call_rows(
        SFN, cause, ["elasticmapreduce:PutAutoTerminationPolicy"], [arn.cluster], PROJECT_CLUSTER
    )


def _sfn_emr_sync(rule: str, actions: tuple[str, ...]) -> Integration:
    def rows(d: Deployment, arn: Arns, state: str, task: Mapping[str, Any]) -> list[Call]:
        cause = f"state {state} (.sync: EventBridge rule {rule})"
        found = call_rows(SFN, cause, actions, [arn.cluster], PROJECT_CLUSTER)
        return found + call_rows(
            SFN,
            cause,
            ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            [arn.rule(rule)],
        )

    return rows


def _sfn_glue(action: str) -> Integration:
    def rows(d: Deployment, arn: Arns, state: str, task: Mapping[str, Any]) -> list[Call]:
        return call_rows(SFN, f"state {state}", [action], [arn.crawler])

    return rows


def _sfn_athena(d: Deployment, arn: Arns, state: str, task: Mapping[str, Any]) -> list[Call]:
    cause = f"state {state} (athena:startQueryExecution.sync)"
    rows = call_rows(
        SFN,
        cause,
        ["athena:StartQueryExecution", "athena:StopQueryExecution", "athena:GetQueryExecution"],
        [arn.workgroup],
    )
    return rows + athena_on_behalf(SFN, arn, cause)


def _sfn_publish(d: Deployment, arn: Arns, state: str, task: Mapping[str, Any]) -> list[Call]:
    return call_rows(SFN, f"state {state}", ["sns:Publish"], [d.topic_arn])


INTEGRATIONS: dict[str, Integration] = {
    "arn:aws:states:::elasticmapreduce:createCluster": _sfn_create_cluster,
    "arn:aws:states:::aws-sdk:emr:putAutoTerminationPolicy": _sfn_idle_timeout,
    "arn:aws:states:::elasticmapreduce:addStep.sync": _sfn_emr_sync(
        "StepFunctionsGetEventForEMRAddJobFlowStepsRule",
        (
            "elasticmapreduce:AddJobFlowSteps",
            "elasticmapreduce:DescribeStep",
            "elasticmapreduce:CancelSteps",
        ),
    ),
    "arn:aws:states:::elasticmapreduce:terminateCluster.sync": _sfn_emr_sync(
        "StepFunctionsGetEventForEMRTerminateJobFlowsRule",
        ("elasticmapreduce:TerminateJobFlows", "elasticmapreduce:DescribeCluster"),
    ),
    "arn:aws:states:::aws-sdk:glue:startCrawler": _sfn_glue("glue:StartCrawler"),
    "arn:aws:states:::aws-sdk:glue:getCrawler": _sfn_glue("glue:GetCrawler"),
    "arn:aws:states:::athena:startQueryExecution.sync": _sfn_athena,
    "arn:aws:states:::sns:publish": _sfn_publish,
}


class NoPermissionRows(KeyError):
    """A Task whose integration this table does not know: its permissions are unproven."""


def state_machine_calls(d: Deployment, definition: Mapping[str, Any]) -> list[Call]:
    """The Step Functions role's rows, one set per Task of ``definition``."""
    from rental_kpis.aws.statemachine import iter_states

    arn = Arns(d)
    rows: list[Call] = []
    for name, state in iter_states(definition):
        if state["Type"] != "Task":
            continue
        resource = state["Resource"]
        if resource not in INTEGRATIONS:
            raise NoPermissionRows(
                f"Task {name}: no permission rows for integration {resource} "
                "(add it to rental_kpis.aws.permissions._stepfunctions_role.INTEGRATIONS)"
            )
        rows += INTEGRATIONS[resource](d, arn, name, state)
    return rows
