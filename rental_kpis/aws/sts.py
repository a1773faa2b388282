"""Who the caller is: the boto3 session for a region and the deployment's names in this account.

``boto3.Session`` honours ``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>``, so the same
code runs against moto_server in the tests.
"""

from __future__ import annotations

import difflib

import boto3
import botocore
from botocore.exceptions import BotoCoreError, ClientError

from rental_kpis.aws.clients import new_session
from rental_kpis.aws.names import Deployment
from rental_kpis.errors import AwsUnavailable, UsageError

Session = boto3.Session  # for type hints outside aws/, which never imports boto3 itself


def resolve_region(region: str | None) -> str:
    """The region given, else the one of the AWS configuration (``AWS_REGION``,
    ``AWS_DEFAULT_REGION``, the profile's ``region``): never a default of the project's own,
    which could differ from where ``setup`` ran. Either must be a region AWS has
    (``check_region``)."""
    if region:
        return check_region(region)
    configured = boto3.Session().region_name
    if not configured:
        raise UsageError(
            "no AWS region: pass --region (notebooks: region=…) or set one with "
            "`aws configure set region eu-west-1` / AWS_REGION"
        )
    return check_region(configured, " (from your AWS configuration)")


def check_region(region: str, origin: str = "") -> str:
    """``region`` when it is one of the regions botocore knows in any partition; else one
    UsageError naming it (and the nearest known region): a typo such as ``eu-wst-1`` would
    otherwise reach no endpoint, which reads like a credentials or network problem."""
    known = known_regions()
    if region in known:
        return region
    nearest = difflib.get_close_matches(region, sorted(known), n=1)
    hint = f"; did you mean {nearest[0]}?" if nearest else ""
    raise UsageError(
        f"AWS region {region!r}{origin} does not exist: botocore {botocore.__version__} knows "
        f"no such region in any partition{hint} (a region newer than this botocore: "
        "pip install -U boto3)"
    )


def known_regions() -> set[str]:
    """Every region of every AWS partition, as the installed botocore lists them (STS has an
    endpoint in each)."""
    session = boto3.Session()
    return {
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("sts", partition_name=partition)
    }


def session_for(region: str | None) -> boto3.Session:
    return new_session(resolve_region(region))


def deployment_for(bucket: str, region: str, session: boto3.Session) -> Deployment:
    """The deployment's names, with the account id STS reports for these credentials;
    AwsUnavailable (one line: what to configure) when there are none or STS refuses them."""
    try:
        account = session.client("sts").get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as error:
        raise AwsUnavailable(
            f"AWS did not accept these credentials ({error}): configure them with "
            "`aws configure` (or AWS_PROFILE=…), check with `rental-kpis aws doctor`; "
            "docs/aws.md explains the setup"
        ) from None
    return Deployment(bucket, region, account)


def caller_arn(session: boto3.Session) -> str:
    return session.client("sts").get_caller_identity()["Arn"]
