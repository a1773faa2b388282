"""Who the caller is: the boto3 session for a region and the deployment's names in this account.

``boto3.Session`` honours ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>``, so the same
code runs against moto_server in the tests.
"""

from __future__ import annotations

import boto3

from rental_kpis.aws.names import Deployment
from rental_kpis.errors import UsageError

Session = boto3.Session  # for type hints outside aws/, which never imports boto3 itself


def resolve_region(region: str | None) -> str:
    """The region given, else the one of the AWS configuration (``AWS_REGION``,
    ``AWS_DEFAULT_REGION``, the profile's ``region``): never a default of the project's own,
    which could differ from where ``setup`` ran."""
    if region:
        return region
    configured = boto3.Session().region_name
    if not configured:
        raise UsageError(
            "no AWS region: pass --region (notebooks: region=…) or set one with "
            "`aws configure set region eu-west-1` / AWS_REGION"
        )
    return configured


def session_for(region: str | None) -> boto3.Session:
    return boto3.Session(region_name=resolve_region(region))


def deployment_for(bucket: str, region: str, session: boto3.Session) -> Deployment:
    """The deployment's names, with the account id STS reports for these credentials."""
    account = session.client("sts").get_caller_identity()["Account"]
    return Deployment(bucket, region, account)


def caller_arn(session: boto3.Session) -> str:
    return session.client("sts").get_caller_identity()["Arn"]
