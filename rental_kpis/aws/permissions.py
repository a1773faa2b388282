"""Every AWS call the project causes, per principal, as IAM sees it: one table in code.

A row is one authorisation AWS makes: the principal whose policy is asked, the IAM action, the
resource ARN and the request's condition keys (``iam:PassedToService``, request and resource
tags). ``tests/test_permissions.py`` renders the policies of ``iam_policies/`` and evaluates
every row with an IAM policy evaluator, so a missing permission fails the suite instead of the
first real run. Stdlib only.

The principals:

- ``student``: the credentials that run ``rental-kpis aws …`` and the notebooks (every boto3 and
  awswrangler call in ``rental_kpis/aws`` and ``walkthrough/aws_backend.py``; the calls Athena
  makes with the caller's rights). Policy: ``iam_policies/operator/student_operator.json``.
- ``stepfunctions_role``: derived from the state machine definition, one entry per Task
  integration (:data:`INTEGRATIONS`), including the calls a ``.sync`` integration makes behind
  it and its EventBridge managed rule, as the Step Functions developer guide lists them ("IAM
  policies for Amazon EMR", "IAM policies for Amazon Athena calls in Step Functions", "How Step
  Functions generates IAM policies for integrated services"). A Task whose integration has no
  entry raises, so a new Task cannot go without its permissions.
- ``emr_service_role``: what EMR does to provision and clean up a cluster of this shape (one
  primary and N core instance groups, EMR-managed security groups, a subnet of the default VPC
  or ``--subnet-id``), taken from the managed policy ``AmazonEMRServicePolicy_v2`` (EMR
  Management Guide, "Service role for Amazon EMR (EMR role)").
- ``emr_ec2_instance_role``: the log push to ``emr-logs/``, the step runner's script fetch, and
  the S3 requests behind the file-system operations recorded from the real steps
  (``emrfs``; ``tests/test_cluster_run.py``).
- ``glue_crawler_role``: a crawl of ``processed/`` (what ``AWSGlueServiceRole`` grants that such a
  crawl uses: AWS Glue Developer Guide, "Step 2: Create an IAM role for AWS Glue").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rental_kpis.aws import emrfs
from rental_kpis.aws.emrfs import LakeOperation
from rental_kpis.aws.names import (
    CLUSTER_TAGS,
    EMR_MANAGED_TAG,
    PROJECT_TAG,
    RUN_ID_TAG,
    Deployment,
)
from rental_kpis.layout import TABLES

# The "Running On-Demand … instances" quotas doctor reads (``doctor.VCPU_QUOTAS``; not imported:
# doctor needs boto3, this module is standard library only).
DOCTOR_VCPU_QUOTAS = (
    "L-1216C47A",
    "L-DB2E81BA",
    "L-417A185B",
    "L-74FC7D96",
    "L-7295265B",
    "L-1945791B",
    "L-6E869C2A",
    "L-2C3B7624",
    "L-43DA4232",
)

# Partitioned KPI tables (``rental_kpis.spark.kpis.PARTITIONS``; not imported: no pyspark here).
PARTITIONED_TABLES = ("daily_metrics",)

STUDENT = "student"
PRINCIPALS = (
    STUDENT,
    "stepfunctions_role",
    "emr_service_role",
    "emr_ec2_instance_role",
    "glue_crawler_role",
)
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
    """The resource tags of what EMR creates for a cluster with ``tags``: EMR propagates the
    cluster's tags to the instances, EBS volumes, ENIs and launch templates it creates, and
    only those ("Amazon EMR managed policies", "Propagated user-specified tagging")."""
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


def _rows(
    principal: str,
    cause: str,
    actions: Iterable[str],
    resources: Iterable[str],
    context: Mapping[str, Any] | None = None,
    api: str = "",
) -> list[Call]:
    return [
        Call(principal, action, resource, cause, dict(context or {}), api)
        for action in actions
        for resource in resources
    ]


# ---------------------------------------------------------------- the student's credentials


def student_calls(d: Deployment) -> list[Call]:
    """Each boto3/awswrangler call of ``rental_kpis/aws`` and the AWS backend, as IAM sees it."""
    arn = Arns(d)
    rows: list[Call] = []

    def add(api: str, action: str, resources: Iterable[str], cause: str, **context: Any) -> None:
        rows.extend(_rows(STUDENT, cause, [action], resources, context, api))

    b, o = arn.bucket, arn.obj
    # s3.py: the hardened bucket
    bucket_calls = {
        "HeadBucket": "s3:ListBucket",
        "CreateBucket": "s3:CreateBucket",
        "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
        "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
        "GetBucketEncryption": "s3:GetEncryptionConfiguration",
        "PutBucketEncryption": "s3:PutEncryptionConfiguration",
        "GetBucketVersioning": "s3:GetBucketVersioning",
        "PutBucketVersioning": "s3:PutBucketVersioning",
        "GetBucketPolicy": "s3:GetBucketPolicy",
        "PutBucketPolicy": "s3:PutBucketPolicy",
        "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
        "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
        "ListObjectsV2": "s3:ListBucket",
        "GetBucketLocation": "s3:GetBucketLocation",
        "ListObjectVersions": "s3:ListBucketVersions",
        "DeleteBucket": "s3:DeleteBucket",
    }
    for api, action in bucket_calls.items():
        add(f"s3.{api}", action, [b], "s3.ensure_bucket / list_keys / delete_bucket")
    add(
        "s3.HeadObject",
        "s3:GetObject",
        [o("raw/users/users.csv"), o("scripts/rental_kpis.zip")],
        "s3.put_if_changed: skip unchanged uploads",
    )
    add(
        "s3.PutObject",
        "s3:PutObject",
        [o("raw/users/users.csv"), o("scripts/rental_kpis.zip"), o("curated/")],
        "s3.upload_inputs and the zone markers",
    )
    add(
        "s3.GetObject",
        "s3:GetObject",
        [
            o("raw/users/users.csv"),
            o("runs/run-1/validate_raw.json"),
            o("processed/user_metrics/part-0.parquet"),
            o("query-results/q.csv"),
        ],
        "verify_raw, step summaries, read_parquet, awswrangler reading Athena's result",
    )
    for action in ("s3:DeleteObject", "s3:DeleteObjectVersion"):
        add(
            "s3.DeleteObjects",
            action,
            [o("raw/users/users.csv")],
            "s3.delete_bucket: every object version (teardown --delete-data)",
        )

    # iam.py: the four roles, the instance profile, the EMR clean-up service-linked role
    roles = [arn.role(r) for r in d.roles.values()]
    for api in (
        "GetRole",
        "CreateRole",
        "UpdateAssumeRolePolicy",
        "GetRolePolicy",
        "PutRolePolicy",
        "ListRolePolicies",
        "DeleteRolePolicy",
        "DeleteRole",
        "ListAttachedRolePolicies",
        "DetachRolePolicy",
    ):
        add(f"iam.{api}", f"iam:{api}", roles, "iam.ensure_roles / delete_roles")
    add("iam.CreateRole", "iam:TagRole", roles, "iam.ensure_roles: roles are created tagged")
    profile = f"arn:{d.partition}:iam::{d.account_id}:instance-profile/{d.emr_ec2_role}"
    for api in (
        "GetInstanceProfile",
        "CreateInstanceProfile",
        "AddRoleToInstanceProfile",
        "RemoveRoleFromInstanceProfile",
        "DeleteInstanceProfile",
    ):
        add(f"iam.{api}", f"iam:{api}", [profile], "iam: the EC2 instance profile")
    # IAM API Reference, AddRoleToInstanceProfile: the caller needs PassRole on the role.
    add(
        "iam.AddRoleToInstanceProfile",
        "iam:PassRole",
        [arn.role(d.emr_ec2_role)],
        "iam: the EC2 role into its instance profile",
    )
    add("iam.GetRole", "iam:GetRole", [arn.cleanup_role], "iam.ensure_cleanup_role, doctor")
    add(
        "iam.CreateServiceLinkedRole",
        "iam:CreateServiceLinkedRole",
        [arn.cleanup_role],
        "iam.ensure_cleanup_role (Step Functions guide: createCluster needs it)",
        **{"iam:AWSServiceName": "elasticmapreduce.amazonaws.com"},
    )

    # glue.py
    db_resources = [arn.catalog, arn.database]
    for api in ("GetDatabase", "CreateDatabase", "DeleteDatabase"):
        add(f"glue.{api}", f"glue:{api}", db_resources, "glue.ensure_catalog / delete_catalog")
    add(
        "glue.DeleteDatabase",
        "glue:DeleteTable",
        [arn.table("user_metrics")],
        "glue.delete_catalog: the database goes with its tables",
    )
    add(
        "glue.GetTables",
        "glue:GetTables",
        [*db_resources, arn.table("user_metrics")],
        "glue.tables: the catalog the notebooks show",
    )
    for api in ("GetCrawler", "UpdateCrawler", "StartCrawler", "DeleteCrawler"):
        add(f"glue.{api}", f"glue:{api}", [arn.crawler], "glue: the crawler over processed/")
    add(
        "glue.CreateCrawler",
        "glue:CreateCrawler",
        [arn.crawler],
        "glue: created tagged",
        **{f"aws:RequestTag/{PROJECT_TAG[0]}": PROJECT_TAG[1]},
    )
    add("glue.CreateCrawler", "glue:TagResource", [arn.crawler], "glue: the crawler is tagged")
    for api in ("CreateCrawler", "UpdateCrawler"):
        add(
            f"glue.{api}",
            "iam:PassRole",
            [arn.role(d.glue_crawler_role)],
            "glue: the crawler runs as its role",
            **{"iam:PassedToService": "glue.amazonaws.com"},
        )
    # logs: the crawler's log stream (teardown deletes it; doctor and docs point at it)
    add(
        "logs.DescribeLogStreams",
        "logs:DescribeLogStreams",
        [arn.crawler_log_group],
        "glue.delete_crawler_logs",
    )
    add(
        "logs.DeleteLogStream",
        "logs:DeleteLogStream",
        [arn.crawler_log_stream],
        "glue.delete_crawler_logs",
    )

    # athena.py: the workgroup, and the queries (awswrangler, and Athena on the caller's behalf)
    add("athena.ListWorkGroups", "athena:ListWorkGroups", ["*"], "athena.ensure_workgroup")
    for api in (
        "GetWorkGroup",
        "CreateWorkGroup",
        "UpdateWorkGroup",
        "DeleteWorkGroup",
        "StartQueryExecution",
        "GetQueryExecution",
        "GetQueryResults",
        "StopQueryExecution",
    ):
        add(f"athena.{api}", f"athena:{api}", [arn.workgroup], "athena: workgroup and queries")
    rows += athena_on_behalf(STUDENT, arn, "athena.run_sql (Athena runs with the caller's rights)")

    # sns.py
    add("sns.ListTopics", "sns:ListTopics", ["*"], "sns.ensure_topic")
    for api in ("CreateTopic", "ListSubscriptionsByTopic", "Subscribe", "DeleteTopic"):
        add(f"sns.{api}", f"sns:{api}", [d.topic_arn], "sns: the notices topic")
    add("sns.CreateTopic", "sns:TagResource", [d.topic_arn], "sns: the topic is tagged")

    # stepfunctions.py
    machine, execution = d.state_machine_arn, arn.execution()
    for api in (
        "DescribeStateMachine",
        "CreateStateMachine",
        "UpdateStateMachine",
        "DeleteStateMachine",
        "StartExecution",
        "ListExecutions",
    ):
        add(f"stepfunctions.{api}", f"states:{api}", [machine], "stepfunctions: the state machine")
    add(
        "stepfunctions.CreateStateMachine",
        "states:TagResource",
        [machine],
        "the state machine is tagged",
    )
    for api in ("CreateStateMachine", "UpdateStateMachine"):
        add(
            f"stepfunctions.{api}",
            "iam:PassRole",
            [arn.role(d.stepfunctions_role)],
            "the state machine runs as its role",
            **{"iam:PassedToService": "states.amazonaws.com"},
        )
    for api in ("DescribeExecution", "GetExecutionHistory", "StopExecution"):
        add(
            f"stepfunctions.{api}",
            f"states:{api}",
            [execution],
            "follow, read, stop (teardown) a run",
        )

    # emr.py: notebook 02 drives a cluster directly; teardown stops the project's clusters
    add("emr.RunJobFlow", "elasticmapreduce:RunJobFlow", ["*"], "emr.create_cluster")
    rows += _create_cluster_extras(
        STUDENT,
        d,
        arn,
        "emr.create_cluster",
        {**dict(CLUSTER_TAGS), RUN_ID_TAG: SAMPLE_RUN_ID},
        api="emr.RunJobFlow",
    )
    for api in ("AddJobFlowSteps", "DescribeStep", "DescribeCluster", "TerminateJobFlows"):
        add(
            f"emr.{api}",
            f"elasticmapreduce:{api}",
            [arn.cluster],
            "emr: steps of notebook 02, teardown of project clusters",
            **PROJECT_CLUSTER,
        )
    add("emr.ListClusters", "elasticmapreduce:ListClusters", ["*"], "teardown, doctor")

    # doctor.py: read-only preflight
    for api in (
        "DescribeVpcs",
        "DescribeSubnets",
        "DescribeSecurityGroups",
        "DescribeInstanceTypeOfferings",
        "DescribeInstanceTypes",
    ):
        add(f"ec2.{api}", f"ec2:{api}", ["*"], "doctor: network and instance types")
    add(
        "ec2.DescribeInstances",
        "ec2:DescribeInstances",
        ["*"],
        "doctor: the vCPUs of the On-Demand instances running in the region",
    )
    add(
        "service-quotas.GetServiceQuota",
        "servicequotas:GetServiceQuota",
        [
            f"arn:{d.partition}:servicequotas:{d.region}:{d.account_id}:ec2/{code}"
            for code in DOCTOR_VCPU_QUOTAS
        ],
        "doctor: the On-Demand vCPU quota of each instance family the cluster uses",
    )
    add(
        "emr.ListReleaseLabels",
        "elasticmapreduce:ListReleaseLabels",
        ["*"],
        "doctor: the region offers the EMR release",
    )
    return rows


def athena_on_behalf(principal: str, arn: Arns, cause: str) -> list[Call]:
    """What Athena does with the caller's rights for a SELECT on the project's tables
    (Athena User Guide, "Identity and access management in Athena"; the Step Functions guide's
    "IAM policies for Amazon Athena calls in Step Functions")."""
    d = arn.d
    tables = [arn.table(t) for t in TABLES]
    partitioned = [arn.table(t) for t in PARTITIONED_TABLES]
    rows = _rows(principal, cause, ["athena:GetDataCatalog"], [arn.data_catalog])
    rows += _rows(
        principal, cause, ["glue:GetDatabase"], [arn.catalog, arn.database, arn.default_database]
    )
    rows += _rows(principal, cause, ["glue:GetTable"], [arn.catalog, arn.database, *tables])
    rows += _rows(
        principal,
        cause,
        ["glue:GetPartition", "glue:GetPartitions", "glue:BatchGetPartition"],
        [arn.catalog, arn.database, *partitioned],
    )
    rows += _rows(
        principal,
        cause,
        ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
        [arn.bucket],
    )
    rows += _rows(
        principal,
        cause,
        ["s3:GetObject"],
        [arn.obj(f"processed/{t}/part-0.parquet") for t in TABLES],
    )
    rows += _rows(
        principal,
        cause,
        ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
        [arn.obj("query-results/0000.csv")],
    )
    rows += _rows(principal, cause, ["lakeformation:GetDataAccess"], ["*"])
    del d
    return rows


def _create_cluster_extras(
    principal: str, d: Deployment, arn: Arns, cause: str, tags: Mapping[str, str], api: str = ""
) -> list[Call]:
    """RunJobFlow passes both EMR roles (the instance-profile role to EC2: AmazonEMRFullAccess
    Policy_v2's PassRoleForEC2) and tags the new cluster, which needs ``AddTags`` (EMR
    Management Guide, "Use cluster and Notebook tags with IAM policies for access control")."""
    return [
        Call(
            principal,
            "iam:PassRole",
            arn.role(d.emr_service_role),
            cause,
            {"iam:PassedToService": "elasticmapreduce.amazonaws.com"},
            api,
        ),
        Call(
            principal,
            "iam:PassRole",
            arn.role(d.emr_ec2_role),
            cause,
            {"iam:PassedToService": "ec2.amazonaws.com"},
            api,
        ),
        Call(principal, "elasticmapreduce:AddTags", arn.cluster, cause, tag_on_create(tags), api),
    ]


# ---------------------------------------------------------------- the Step Functions role

# (deployment, ARNs, state name, state) -> the rows of that Task
Integration = Callable[[Deployment, Arns, str, Mapping[str, Any]], list[Call]]
SFN = "stepfunctions_role"


def _sfn_create_cluster(
    d: Deployment, arn: Arns, state: str, task: Mapping[str, Any]
) -> list[Call]:
    cause = f"state {state} (elasticmapreduce:createCluster)"
    rows = _rows(SFN, cause, ["elasticmapreduce:RunJobFlow"], ["*"])
    rows += _rows(
        SFN,
        cause,
        ["elasticmapreduce:DescribeCluster", "elasticmapreduce:TerminateJobFlows"],
        [arn.cluster],
        PROJECT_CLUSTER,
    )
    tags = {
        t["Key"]: t.get("Value", SAMPLE_RUN_ID) for t in task.get("Parameters", {}).get("Tags", [])
    }
    return rows + _create_cluster_extras(SFN, d, arn, cause, tags)


def _sfn_idle_timeout(d: Deployment, arn: Arns, state: str, task: Mapping[str, Any]) -> list[Call]:
    """EMR's PutAutoTerminationPolicy through the AWS SDK integration: Step Functions generates
    no policy for SDK integrations ("Learning to use AWS service SDK integrations in Step
    Functions"); the action takes the ``cluster*`` resource and supports ``aws:ResourceTag``
    (Service Authorization Reference, "Actions, resources, and condition keys for Amazon
    Elastic MapReduce")."""
    cause = f"state {state} (aws-sdk:emr:putAutoTerminationPolicy)"
    return _rows(
        SFN, cause, ["elasticmapreduce:PutAutoTerminationPolicy"], [arn.cluster], PROJECT_CLUSTER
    )


def _sfn_emr_sync(rule: str, actions: tuple[str, ...]) -> Integration:
    def rows(d: Deployment, arn: Arns, state: str, task: Mapping[str, Any]) -> list[Call]:
        cause = f"state {state} (.sync: EventBridge rule {rule})"
        found = _rows(SFN, cause, actions, [arn.cluster], PROJECT_CLUSTER)
        return found + _rows(
            SFN,
            cause,
            ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            [arn.rule(rule)],
        )

    return rows


def _sfn_glue(action: str) -> Integration:
    def rows(d: Deployment, arn: Arns, state: str, task: Mapping[str, Any]) -> list[Call]:
        return _rows(SFN, f"state {state}", [action], [arn.crawler])

    return rows


def _sfn_athena(d: Deployment, arn: Arns, state: str, task: Mapping[str, Any]) -> list[Call]:
    cause = f"state {state} (athena:startQueryExecution.sync)"
    rows = _rows(
        SFN,
        cause,
        ["athena:StartQueryExecution", "athena:StopQueryExecution", "athena:GetQueryExecution"],
        [arn.workgroup],
    )
    return rows + athena_on_behalf(SFN, arn, cause)


def _sfn_publish(d: Deployment, arn: Arns, state: str, task: Mapping[str, Any]) -> list[Call]:
    return _rows(SFN, f"state {state}", ["sns:Publish"], [d.topic_arn])


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
                "(add it to rental_kpis.aws.permissions.INTEGRATIONS)"
            )
        rows += INTEGRATIONS[resource](d, arn, name, state)
    return rows


# ---------------------------------------------------------------- the EMR service role

EMR = "emr_service_role"

# AmazonEMRServicePolicy_v2's ListActionsForEC2Resources: read-only, no resource-level support.
EMR_DESCRIBE = (
    "ec2:DescribeAccountAttributes",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeCapacityReservations",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeInstanceTypeOfferings",
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeNetworkAcls",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribePlacementGroups",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVolumeStatus",
    "ec2:DescribeVolumes",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeVpcs",
)


def emr_service_role_calls(d: Deployment, cluster_tags: Mapping[str, str]) -> list[Call]:
    """Provisioning and clean-up of one cluster of this shape, created with ``cluster_tags``,
    by EMR with the service role. What EMR creates carries the cluster's tags (propagated), its
    own security groups the EMR managed-policy tag (automatic)."""
    arn = Arns(d)
    made = propagated(cluster_tags)
    made_on_create = {f"aws:RequestTag/{k}": v for k, v in cluster_tags.items()}
    ec2 = arn.ec2
    ami = f"arn:{d.partition}:ec2:{d.region}::image/ami-0example"
    res = {
        kind: f"{ec2}:{kind}/{kind[:3]}-0example"
        for kind in (
            "instance",
            "volume",
            "network-interface",
            "subnet",
            "security-group",
            "launch-template",
            "vpc",
        )
    }
    rows = _rows(EMR, "EMR reads the network, images and instance states", EMR_DESCRIBE, ["*"])
    rows += _rows(
        EMR,
        "EMR reads capacity-reservation groups",
        ["resource-groups:ListGroupResources"],
        [f"arn:{d.partition}:resource-groups:{d.region}:{d.account_id}:group/example"],
    )
    rows += _rows(
        EMR, "EMR checks the VPC's DNS settings", ["ec2:DescribeVpcAttribute"], [res["vpc"]]
    )
    cause = "EMR creates the managed security groups (tagged on create)"
    rows += _rows(EMR, cause, ["ec2:CreateSecurityGroup"], [res["vpc"]])
    rows += _rows(
        EMR, cause, ["ec2:CreateSecurityGroup"], [res["security-group"]], EMR_TAGS_ON_CREATE
    )
    rows += _rows(
        EMR,
        cause,
        ["ec2:CreateTags"],
        [res["security-group"]],
        {**EMR_TAGS_ON_CREATE, "ec2:CreateAction": "CreateSecurityGroup"},
    )
    rows += _rows(
        EMR,
        "EMR opens the rules of its own security groups",
        [
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupEgress",
        ],
        [res["security-group"]],
        EMR_TAGGED,
    )
    cause = "EMR launches the instances (launch template + RunInstances)"
    rows += _rows(
        EMR, cause, ["ec2:CreateLaunchTemplate"], [res["launch-template"]], made_on_create
    )
    rows += _rows(
        EMR,
        cause,
        ["ec2:CreateLaunchTemplateVersion", "ec2:RunInstances"],
        [res["launch-template"]],
        made,
    )
    rows += _rows(
        EMR, cause, ["ec2:RunInstances"], [res["instance"], res["volume"]], made_on_create
    )
    rows += _rows(
        EMR,
        cause,
        ["ec2:RunInstances"],
        [res["network-interface"], res["subnet"], res["security-group"], ami],
    )
    rows += _rows(
        EMR, cause, ["ec2:CreateNetworkInterface"], [res["network-interface"]], made_on_create
    )
    rows += _rows(
        EMR, cause, ["ec2:CreateNetworkInterface"], [res["subnet"], res["security-group"]]
    )
    for action in ("RunInstances", "CreateLaunchTemplate", "CreateNetworkInterface"):
        rows += _rows(
            EMR,
            f"tags on create ({action})",
            ["ec2:CreateTags"],
            [res["instance"], res["volume"], res["network-interface"], res["launch-template"]],
            {"ec2:CreateAction": action},
        )
    rows += _rows(
        EMR,
        "EMR tags and untags what it made",
        ["ec2:CreateTags", "ec2:DeleteTags"],
        [res["instance"], res["volume"], res["network-interface"]],
        made,
    )
    rows += _rows(
        EMR,
        "EMR stops and cleans up the cluster's instances",
        ["ec2:TerminateInstances", "ec2:ModifyInstanceAttribute"],
        [res["instance"]],
        made,
    )
    rows += _rows(
        EMR, "EMR cleans up", ["ec2:DeleteNetworkInterface"], [res["network-interface"]], made
    )
    rows += _rows(
        EMR, "EMR cleans up", ["ec2:DeleteLaunchTemplate"], [res["launch-template"]], made
    )
    group = f"{ec2}:placement-group/EMR_example"
    rows += _rows(
        EMR,
        "EMR placement groups",
        ["ec2:CreatePlacementGroup", "ec2:DeletePlacementGroup"],
        [group],
    )
    rows += _rows(
        EMR,
        "EMR hands the instance profile's role to EC2",
        ["iam:PassRole"],
        [arn.role(d.emr_ec2_role)],
        {"iam:PassedToService": "ec2.amazonaws.com"},
    )
    return rows


# ---------------------------------------------------------------- EC2 instance role, crawler

EC2 = "emr_ec2_instance_role"


def instance_role_calls(d: Deployment, lake_operations: Iterable[LakeOperation] = ()) -> list[Call]:
    """What runs on the cluster with the instance profile's role: EMR's step runner and log
    push, and the S3 requests behind ``lake_operations``, the file-system operations the
    Spark steps make on the lake (``emrfs.requests``). Those are recorded from the real step
    scripts, not listed here (``tests/test_cluster_run.py``)."""
    arn = Arns(d)
    o = arn.obj
    rows = _rows(EC2, "EMRFS locates the bucket", ["s3:GetBucketLocation"], [arn.bucket])
    rows += _rows(
        EC2,
        "spark-submit fetches the step script and library zip",
        ["s3:GetObject"],
        [o("scripts/validate_raw.py"), o("scripts/rental_kpis.zip")],
    )
    rows += _rows(
        EC2,
        "EMR pushes cluster and step logs",
        ["s3:PutObject"],
        [o("emr-logs/j-EXAMPLE0CLUSTER/steps/s-1/stderr.gz")],
    )
    for operation in sorted(set(lake_operations), key=str):
        cause = f"a step's {operation.kind} of {operation.key or 'the bucket'}"
        for request in emrfs.requests(operation):
            if request.key is None:
                context = {"s3:prefix": request.prefix}
                rows += _rows(EC2, cause, [request.action], [arn.bucket], context)
            else:
                rows += _rows(EC2, cause, [request.action], [o(request.key)])
    return rows


GLUE = "glue_crawler_role"


def crawler_calls(d: Deployment) -> list[Call]:
    """A crawl of the four ``processed/<table>/`` targets into the project database."""
    arn = Arns(d)
    rows = _rows(GLUE, "the crawler locates the bucket", ["s3:GetBucketLocation"], [arn.bucket])
    for table in TABLES:
        rows += _rows(
            GLUE,
            "the crawler lists a target",
            ["s3:ListBucket"],
            [arn.bucket],
            {"s3:prefix": f"processed/{table}/"},
        )
        rows += _rows(
            GLUE,
            "the crawler reads Parquet footers",
            ["s3:GetObject"],
            [arn.obj(f"processed/{table}/part-0.parquet")],
        )
    tables = [arn.table(t) for t in TABLES]
    rows += _rows(
        GLUE, "the crawler reads the database", ["glue:GetDatabase"], [arn.catalog, arn.database]
    )
    rows += _rows(
        GLUE,
        "the crawler writes tables",
        ["glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable"],
        [arn.catalog, arn.database, *tables],
    )
    partitioned = [arn.table(t) for t in PARTITIONED_TABLES]
    rows += _rows(
        GLUE,
        "the crawler writes partitions",
        [
            "glue:GetPartition",
            "glue:GetPartitions",
            "glue:BatchGetPartition",
            "glue:CreatePartition",
            "glue:BatchCreatePartition",
            "glue:UpdatePartition",
            "glue:BatchUpdatePartition",
        ],
        [arn.catalog, arn.database, *partitioned],
    )
    rows += _rows(GLUE, "the crawler's log group", ["logs:CreateLogGroup"], [arn.crawler_log_group])
    # CreateLogStream: authorised on the stream or on its group, whichever AWS names; both pass.
    rows += _rows(
        GLUE,
        "the crawler's log stream",
        ["logs:CreateLogStream"],
        [arn.crawler_log_group, arn.crawler_log_stream],
    )
    rows += _rows(GLUE, "the crawler logs", ["logs:PutLogEvents"], [arn.crawler_log_stream])
    return rows


def all_calls(d: Deployment, definition: Mapping[str, Any] | None = None) -> list[Call]:
    """The whole table: every principal's rows (the state machine rendered for ``d``)."""
    from rental_kpis.aws import statemachine

    definition = definition if definition is not None else statemachine.render(d)
    return [
        *student_calls(d),
        *state_machine_calls(d, definition),
        *emr_service_role_calls(d, created_cluster_tags(definition)),
        *instance_role_calls(d),
        *crawler_calls(d),
    ]
