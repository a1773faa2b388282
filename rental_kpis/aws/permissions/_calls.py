"""The permission table's rows: one ``Call`` per authorisation, the principals, the ARNs of a
deployment's resources and the condition keys of tagged requests. Standard library only."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rental_kpis.aws.names import EMR_MANAGED_TAG, PROJECT_TAG, Deployment

# Partitioned KPI tables (``rental_kpis.spark.kpis.PARTITIONS``; not imported: no pyspark here).
PARTITIONED_TABLES = ("daily_metrics",)

STUDENT = "student"
SFN = "stepfunctions_role"
EMR = "emr_service_role"
EC2 = "emr_ec2_instance_role"
GLUE = "glue_crawler_role"
PRINCIPALS = (STUDENT, SFN, EMR, EC2, GLUE)

# The calls AWS authorises without any IAM permission (IAM User Guide, GetCallerIdentity).
NO_PERMISSION_NEEDED = frozenset({"sts.GetCallerIdentity"})


@dataclass(frozen=True)
class Call:
    """One authorisation: ``principal`` needs ``action`` on ``resource`` with ``context``."""

    principal: str
    action: str
    resource: str
    cause: str  # what makes the call: a function, a state, a step
    context: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    api: str = ""  # the boto3 operation, "<service>.<Operation>", for the student's calls

    def __str__(self) -> str:
        extra = f" {dict(self.context)}" if self.context else ""
        return f"{self.principal}: {self.action} on {self.resource}{extra} ({self.cause})"


class Arns:
    """The ARNs of one deployment's resources."""

    def __init__(self, d: Deployment) -> None:
        self.d = d
        p, r, a = d.partition, d.region, d.account_id
        self.bucket = f"arn:{p}:s3:::{d.bucket}"
        self.catalog = f"arn:{p}:glue:{r}:{a}:catalog"
        self.database = f"arn:{p}:glue:{r}:{a}:database/{d.database}"
        self.default_database = f"arn:{p}:glue:{r}:{a}:database/default"
        self.crawler = f"arn:{p}:glue:{r}:{a}:crawler/{d.crawler}"
        self.workgroup = f"arn:{p}:athena:{r}:{a}:workgroup/{d.workgroup}"
        self.data_catalog = f"arn:{p}:athena:{r}:{a}:datacatalog/AwsDataCatalog"
        self.cluster = f"arn:{p}:elasticmapreduce:{r}:{a}:cluster/j-EXAMPLE0CLUSTER"
        # CloudWatch Logs authorises log-group actions on the group's ARN with a trailing
        # ":*" (CloudWatch Logs API Reference, "LogGroup": ``arn`` "includes a trailing :*
        # after the log group name. Use this version to refer to the ARN in IAM policies when
        # specifying permissions for most API actions"); a policy naming the bare group ARN
        # does not match it.
        group = f"arn:{p}:logs:{r}:{a}:log-group:/aws-glue/crawlers"
        self.crawler_log_group = f"{group}:*"
        self.crawler_log_stream = f"{group}:log-stream:{d.crawler}"
        self.cleanup_role = (
            f"arn:{p}:iam::{a}:role/aws-service-role/elasticmapreduce.amazonaws.com/"
            "AWSServiceRoleForEMRCleanup"
        )
        self.ec2 = f"arn:{p}:ec2:{r}:{a}"
        self.region, self.account = r, a

    def obj(self, key: str) -> str:
        return f"{self.bucket}/{key}"

    def table(self, name: str) -> str:
        d = self.d
        return f"arn:{d.partition}:glue:{self.region}:{self.account}:table/{d.database}/{name}"

    def role(self, name: str) -> str:
        return self.d.role_arn(name)

    def rule(self, name: str) -> str:
        return f"arn:{self.d.partition}:events:{self.region}:{self.account}:rule/{name}"

    def execution(self) -> str:
        return self.d.execution_arn("run-1")


PROJECT_CLUSTER = {f"aws:ResourceTag/{PROJECT_TAG[0]}": PROJECT_TAG[1]}
# EMR tags the security groups it creates with this tag whatever the cluster's tags are
# (EMR Management Guide, "Amazon EMR managed policies": "Automatically-tagged security groups").
EMR_TAGGED = {f"aws:ResourceTag/{EMR_MANAGED_TAG[0]}": EMR_MANAGED_TAG[1]}
EMR_TAGS_ON_CREATE = {f"aws:RequestTag/{EMR_MANAGED_TAG[0]}": EMR_MANAGED_TAG[1]}


def tag_on_create(tags: Mapping[str, str]) -> dict[str, Any]:
    """The condition keys of a create request carrying ``tags``."""
    return {**{f"aws:RequestTag/{k}": v for k, v in tags.items()}, "aws:TagKeys": tuple(tags)}


def propagated(tags: Mapping[str, str]) -> dict[str, str]:
    """The resource tags of what EMR creates for a cluster tagged ``tags``."""
    return {f"aws:ResourceTag/{k}": v for k, v in tags.items()}


def created_cluster_tags(definition: Mapping[str, Any]) -> dict[str, str]:
    """The tags the state machine's createCluster Task gives the cluster (a value taken from
    the execution, ``Value.$``, as run ``SAMPLE_RUN_ID`` fills it)."""
    from rental_kpis.aws.statemachine import iter_states

    for _, state in iter_states(definition):
        if str(state.get("Resource", "")).startswith(CREATE_CLUSTER):
            return {
                t["Key"]: t.get("Value", SAMPLE_RUN_ID) for t in state["Parameters"].get("Tags", [])
            }
    return {}


SAMPLE_RUN_ID = "run-1"


CREATE_CLUSTER = "arn:aws:states:::elasticmapreduce:createCluster"


def call_rows(
    principal: str,
    cause: str,
    actions: Iterable[str],
    resources: Iterable[str],
    context: Mapping[str, Any] | None = None,
    api: str = "",
) -> list[Call]:
    """One row per action and resource: ``principal`` needs each action on each resource."""
    return [
        Call(principal, action, resource, cause, dict(context or {}), api)
        for action in actions
        for resource in resources
    ]
