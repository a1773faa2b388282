"""Rows two principals share: what Athena reads with its caller's rights, and what starting a
cluster (RunJobFlow) takes besides the call itself."""

from __future__ import annotations

from collections.abc import Mapping

from rental_kpis.aws.names import Deployment
from rental_kpis.aws.permissions._calls import (
    PARTITIONED_TABLES,
    Arns,
    Call,
    call_rows,
    tag_on_create,
)
from rental_kpis.layout import TABLES


def athena_on_behalf(principal: str, arn: Arns, cause: str) -> list[Call]:
    """What Athena does with the caller's rights for a SELECT on the project's tables
    (Athena User Guide, "Identity and access management in Athena"; the Step Functions guide's
    "IAM policies for Amazon Athena calls in Step Functions")."""
    d = arn.d
    tables = [arn.table(t) for t in TABLES]
    partitioned = [arn.table(t) for t in PARTITIONED_TABLES]
    rows = call_rows(principal, cause, ["athena:GetDataCatalog"], [arn.data_catalog])
    rows += call_rows(
        principal, cause, ["glue:GetDatabase"], [arn.catalog, arn.database, arn.default_database]
    )
    rows += call_rows(principal, cause, ["glue:GetTable"], [arn.catalog, arn.database, *tables])
    rows += call_rows(
        principal,
        cause,
        ["glue:GetPartition", "glue:GetPartitions", "glue:BatchGetPartition"],
        [arn.catalog, arn.database, *partitioned],
    )
    rows += call_rows(
        principal,
        cause,
        ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
        [arn.bucket],
    )
    rows += call_rows(
        principal,
        cause,
        ["s3:GetObject"],
        [arn.obj(f"processed/{t}/part-0.parquet") for t in TABLES],
    )
    rows += call_rows(
        principal,
        cause,
        ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
        [arn.obj("query-results/0000.csv")],
    )
    rows += call_rows(principal, cause, ["lakeformation:GetDataAccess"], ["*"])
    del d
    return rows


def create_cluster_extras(
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
