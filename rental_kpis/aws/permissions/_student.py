"""The student's credentials: every boto3 and awswrangler call of ``rental_kpis/aws`` and of
the AWS backend, as IAM sees it, one function per module that makes them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rental_kpis.aws.names import CLUSTER_TAGS, PROJECT_TAG, RUN_ID_TAG, Deployment
from rental_kpis.aws.permissions._calls import (
    PROJECT_CLUSTER,
    SAMPLE_RUN_ID,
    STUDENT,
    Arns,
    Call,
    call_rows,
)
from rental_kpis.aws.permissions._shared_rows import athena_on_behalf, create_cluster_extras

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


def student_calls(d: Deployment) -> list[Call]:
    """Each boto3/awswrangler call of ``rental_kpis/aws`` and the AWS backend, as IAM sees it."""
    arn = Arns(d)
    return [
        *_s3_calls(arn),
        *_iam_calls(d, arn),
        *_glue_calls(d, arn),
        *_athena_calls(arn),
        *_sns_calls(d),
        *_stepfunctions_calls(d, arn),
        *_emr_calls(d, arn),
        *_doctor_calls(d),
    ]


def _call(
    api: str, action: str, resources: Iterable[str], cause: str, **context: Any
) -> list[Call]:
    """The rows of one boto3 operation ``api`` that IAM authorises as ``action``."""
    return call_rows(STUDENT, cause, [action], resources, context, api)


def _s3_calls(arn: Arns) -> list[Call]:
    """s3.py: the hardened bucket, uploads, reads and teardown's deletes."""
    b, o = arn.bucket, arn.obj
    found: list[Call] = []
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
        found += _call(f"s3.{api}", action, [b], "s3.ensure_bucket / list_keys / delete_bucket")
    found += _call(
        "s3.HeadObject",
        "s3:GetObject",
        [o("raw/users/users.csv"), o("scripts/rental_kpis.zip")],
        "s3.put_if_changed: skip unchanged uploads",
    )
    found += _call(
        "s3.PutObject",
        "s3:PutObject",
        [o("raw/users/users.csv"), o("scripts/rental_kpis.zip"), o("curated/")],
        "s3.upload_inputs and the zone markers",
    )
    found += _call(
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
        found += _call(
            "s3.DeleteObjects",
            action,
            [o("raw/users/users.csv")],
            "s3.delete_bucket: every object version (teardown --delete-data)",
        )
    return found


def _iam_calls(d: Deployment, arn: Arns) -> list[Call]:
    """iam.py: the four roles, the instance profile, the EMR clean-up service-linked role."""
    found: list[Call] = []
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
        found += _call(f"iam.{api}", f"iam:{api}", roles, "iam.ensure_roles / delete_roles")
    found += _call(
        "iam.CreateRole", "iam:TagRole", roles, "iam.ensure_roles: roles are created tagged"
    )
    profile = f"arn:{d.partition}:iam::{d.account_id}:instance-profile/{d.emr_ec2_role}"
    for api in (
        "GetInstanceProfile",
        "CreateInstanceProfile",
        "AddRoleToInstanceProfile",
        "RemoveRoleFromInstanceProfile",
        "DeleteInstanceProfile",
    ):
        found += _call(f"iam.{api}", f"iam:{api}", [profile], "iam: the EC2 instance profile")
    # IAM API Reference, AddRoleToInstanceProfile: the caller needs PassRole on the role.
    found += _call(
        "iam.AddRoleToInstanceProfile",
        "iam:PassRole",
        [arn.role(d.emr_ec2_role)],
        "iam: the EC2 role into its instance profile",
    )
    found += _call(
        "iam.GetRole", "iam:GetRole", [arn.cleanup_role], "iam.ensure_cleanup_role, doctor"
    )
    found += _call(
        "iam.CreateServiceLinkedRole",
        "iam:CreateServiceLinkedRole",
        [arn.cleanup_role],
        "iam.ensure_cleanup_role (Step Functions guide: createCluster needs it)",
        **{"iam:AWSServiceName": "elasticmapreduce.amazonaws.com"},
    )
    return found


def _glue_calls(d: Deployment, arn: Arns) -> list[Call]:
    """glue.py: the catalog, the crawler and the crawler's log stream."""
    found: list[Call] = []
    db_resources = [arn.catalog, arn.database]
    for api in ("GetDatabase", "CreateDatabase", "DeleteDatabase"):
        found += _call(
            f"glue.{api}", f"glue:{api}", db_resources, "glue.ensure_catalog / delete_catalog"
        )
    found += _call(
        "glue.DeleteDatabase",
        "glue:DeleteTable",
        [arn.table("user_metrics")],
        "glue.delete_catalog: the database goes with its tables",
    )
    found += _call(
        "glue.GetTables",
        "glue:GetTables",
        [*db_resources, arn.table("user_metrics")],
        "glue.tables: the catalog the notebooks show",
    )
    for api in ("GetCrawler", "UpdateCrawler", "StartCrawler", "DeleteCrawler"):
        found += _call(
            f"glue.{api}", f"glue:{api}", [arn.crawler], "glue: the crawler over processed/"
        )
    found += _call(
        "glue.CreateCrawler",
        "glue:CreateCrawler",
        [arn.crawler],
        "glue: created tagged",
        **{f"aws:RequestTag/{PROJECT_TAG[0]}": PROJECT_TAG[1]},
    )
    found += _call(
        "glue.CreateCrawler", "glue:TagResource", [arn.crawler], "glue: the crawler is tagged"
    )
    for api in ("CreateCrawler", "UpdateCrawler"):
        found += _call(
            f"glue.{api}",
            "iam:PassRole",
            [arn.role(d.glue_crawler_role)],
            "glue: the crawler runs as its role",
            **{"iam:PassedToService": "glue.amazonaws.com"},
        )
    # logs: the crawler's log stream (teardown deletes it; doctor and docs point at it)
    found += _call(
        "logs.DescribeLogStreams",
        "logs:DescribeLogStreams",
        [arn.crawler_log_group],
        "glue.delete_crawler_logs",
    )
    found += _call(
        "logs.DeleteLogStream",
        "logs:DeleteLogStream",
        [arn.crawler_log_stream],
        "glue.delete_crawler_logs",
    )
    return found


def _athena_calls(arn: Arns) -> list[Call]:
    """athena.py: the workgroup and the queries (awswrangler; Athena on the caller's behalf)."""
    found: list[Call] = []
    found += _call(
        "athena.ListWorkGroups", "athena:ListWorkGroups", ["*"], "athena.ensure_workgroup"
    )
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
        found += _call(
            f"athena.{api}", f"athena:{api}", [arn.workgroup], "athena: workgroup and queries"
        )
    found += athena_on_behalf(STUDENT, arn, "athena.run_sql (Athena runs with the caller's rights)")
    return found


def _sns_calls(d: Deployment) -> list[Call]:
    """sns.py: the notices topic."""
    found: list[Call] = []
    found += _call("sns.ListTopics", "sns:ListTopics", ["*"], "sns.ensure_topic")
    for api in ("CreateTopic", "ListSubscriptionsByTopic", "Subscribe", "DeleteTopic"):
        found += _call(f"sns.{api}", f"sns:{api}", [d.topic_arn], "sns: the notices topic")
    found += _call("sns.CreateTopic", "sns:TagResource", [d.topic_arn], "sns: the topic is tagged")
    return found


def _stepfunctions_calls(d: Deployment, arn: Arns) -> list[Call]:
    """stepfunctions.py: the state machine and its executions."""
    found: list[Call] = []
    machine, execution = d.state_machine_arn, arn.execution()
    for api in (
        "DescribeStateMachine",
        "CreateStateMachine",
        "UpdateStateMachine",
        "DeleteStateMachine",
        "StartExecution",
        "ListExecutions",
    ):
        found += _call(
            f"stepfunctions.{api}", f"states:{api}", [machine], "stepfunctions: the state machine"
        )
    found += _call(
        "stepfunctions.CreateStateMachine",
        "states:TagResource",
        [machine],
        "the state machine is tagged",
    )
    for api in ("CreateStateMachine", "UpdateStateMachine"):
        found += _call(
            f"stepfunctions.{api}",
            "iam:PassRole",
            [arn.role(d.stepfunctions_role)],
            "the state machine runs as its role",
            **{"iam:PassedToService": "states.amazonaws.com"},
        )
    for api in ("DescribeExecution", "GetExecutionHistory", "StopExecution"):
        found += _call(
            f"stepfunctions.{api}",
            f"states:{api}",
            [execution],
            "follow, read, stop (teardown) a run",
        )
    return found


def _emr_calls(d: Deployment, arn: Arns) -> list[Call]:
    """emr.py: notebook 02 drives a cluster directly; teardown stops the project's clusters."""
    found: list[Call] = []
    found += _call("emr.RunJobFlow", "elasticmapreduce:RunJobFlow", ["*"], "emr.create_cluster")
    found += create_cluster_extras(
        STUDENT,
        d,
        arn,
        "emr.create_cluster",
        {**dict(CLUSTER_TAGS), RUN_ID_TAG: SAMPLE_RUN_ID},
        api="emr.RunJobFlow",
    )
    for api in ("AddJobFlowSteps", "DescribeStep", "DescribeCluster", "TerminateJobFlows"):
        found += _call(
            f"emr.{api}",
            f"elasticmapreduce:{api}",
            [arn.cluster],
            "emr: steps of notebook 02, teardown of project clusters",
            **PROJECT_CLUSTER,
        )
    found += _call("emr.ListClusters", "elasticmapreduce:ListClusters", ["*"], "teardown, doctor")
    return found


def _doctor_calls(d: Deployment) -> list[Call]:
    """doctor.py: the read-only preflight."""
    found: list[Call] = []
    for api in (
        "DescribeVpcs",
        "DescribeSubnets",
        "DescribeSecurityGroups",
        "DescribeInstanceTypeOfferings",
        "DescribeInstanceTypes",
    ):
        found += _call(f"ec2.{api}", f"ec2:{api}", ["*"], "doctor: network and instance types")
    found += _call(
        "ec2.DescribeInstances",
        "ec2:DescribeInstances",
        ["*"],
        "doctor: the vCPUs of the On-Demand instances running in the region",
    )
    found += _call(
        "service-quotas.GetServiceQuota",
        "servicequotas:GetServiceQuota",
        [
            f"arn:{d.partition}:servicequotas:{d.region}:{d.account_id}:ec2/{code}"
            for code in DOCTOR_VCPU_QUOTAS
        ],
        "doctor: the On-Demand vCPU quota of each instance family the cluster uses",
    )
    found += _call(
        "emr.ListReleaseLabels",
        "elasticmapreduce:ListReleaseLabels",
        ["*"],
        "doctor: the region offers the EMR release",
    )
    return found
