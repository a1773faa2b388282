"""Who the caller is: the boto3 session for a region and the deployment's names in this account.

``boto3.Session`` honours ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>``, so the same
code runs against moto_server in the tests.
"""

from __future__ import annotations

import boto3

from rental_kpis.aws.names import Deployment

Session = boto3.Session  # for type hints outside aws/, which never imports boto3 itself


def session_for(region: str) -> boto3.Session:
    return boto3.Session(region_name=region)


def deployment_for(bucket: str, region: str, session: boto3.Session) -> Deployment:
    """The deployment's names, with the account id STS reports for these credentials."""
    account = session.client("sts").get_caller_identity()["Account"]
    return Deployment(bucket, region, account)


def caller_arn(session: boto3.Session) -> str:
    return session.client("sts").get_caller_identity()["Arn"]
