"""The account: credentials, EMR's clean-up role, and what an earlier setup left."""

from __future__ import annotations

import boto3

from rental_kpis.aws import emr, iam, s3
from rental_kpis.aws.doctor._check import FAIL, OK, WARN, Check, one_line
from rental_kpis.aws.names import Deployment


def credentials_check(session: boto3.Session) -> Check:
    try:
        me = session.client("sts").get_caller_identity()
    except Exception as error:
        return Check(
            "credentials",
            FAIL,
            one_line(error),
            "configure credentials: `aws configure` (or AWS_PROFILE=…), then "
            "`aws sts get-caller-identity`",
        )
    return Check("credentials", OK, f"account {me['Account']} as {me['Arn']}")


def cleanup_role_check(session: boto3.Session) -> Check:
    if iam.cleanup_role_exists(session):
        return Check("EMR clean-up role", OK, f"{iam.CLEANUP_ROLE} exists")
    return Check(
        "EMR clean-up role",
        WARN,
        f"{iam.CLEANUP_ROLE} not created yet",
        "setup creates it (needs iam:CreateServiceLinkedRole for elasticmapreduce.amazonaws.com)",
    )


def leftovers_check(deployment: Deployment, session: boto3.Session) -> Check:
    """What an earlier setup of this bucket left: running clusters bill, the rest is reused."""
    clusters = emr.project_clusters(deployment, session)
    if clusters:
        return Check(
            "earlier setup",
            FAIL,
            f"cluster(s) {', '.join(clusters)} running and billing",
            f"rental-kpis aws teardown --bucket {deployment.bucket} --region {deployment.region}",
        )
    found = []
    where = s3.bucket_region(deployment, session)
    if where is not None:
        found.append(f"bucket {deployment.bucket} ({where})")
    iam_client = session.client("iam")
    for role in deployment.roles.values():
        try:
            iam_client.get_role(RoleName=role)
            found.append(f"role {role}")
        except iam_client.exceptions.NoSuchEntityException:
            pass
    if not found:
        return Check("earlier setup", OK, "nothing of this deployment exists yet")
    if where is not None and where != deployment.region:
        return Check(
            "earlier setup",
            FAIL,
            f"bucket {deployment.bucket} is in {where}",
            f"use --region {where}, or another bucket name",
        )
    return Check(
        "earlier setup",
        OK,
        f"found {len(found)} resource(s) ({found[0]}, …): setup reuses them, teardown removes them",
    )
