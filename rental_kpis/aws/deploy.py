"""``rental-kpis aws setup / teardown``: the order in which the services are set up and removed.

Setup creates everything idempotently (a second setup changes nothing); teardown removes it
with one command so a student stops paying. Each service's own calls live in its module
(``s3``, ``iam``, ``glue``, ``athena``, ``sns``, ``stepfunctions``); this module only orders them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from rental_kpis.aws import athena, glue, iam, s3, sns, stepfunctions
from rental_kpis.aws.emr import ClusterSpec
from rental_kpis.aws.names import Deployment
from rental_kpis.aws.sts import caller_arn, deployment_for, session_for


@dataclass
class SetupReport:
    deployment: Deployment
    changed: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)


def setup(
    bucket: str,
    region: str,
    *,
    raw: Path,
    notify_email: str | None = None,
    spec: ClusterSpec | None = None,
    session: boto3.Session | None = None,
) -> SetupReport:
    """Create or bring up to date everything the pipeline needs. Safe to run again."""
    session = session or session_for(region)
    deployment = deployment_for(bucket, region, session)
    report = SetupReport(deployment)
    report.changed += s3.ensure_bucket(deployment, session)
    report.uploaded += s3.upload_inputs(deployment, session, raw)
    report.changed += iam.ensure_roles(deployment, session)
    report.changed += glue.ensure_catalog(deployment, session)
    report.changed += athena.ensure_workgroup(deployment, session)
    report.changed += sns.ensure_topic(deployment, session, notify_email)
    report.changed += stepfunctions.ensure_state_machine(deployment, session, spec)
    return report


def teardown(
    bucket: str, region: str, *, delete_data: bool = False, session: boto3.Session | None = None
) -> list[str]:
    """Remove everything setup made; the bucket (every object version) only with ``delete_data``."""
    session = session or session_for(region)
    deployment = deployment_for(bucket, region, session)
    removed = stepfunctions.delete_state_machine(deployment, session)
    removed += glue.delete_catalog(deployment, session)
    removed += athena.delete_workgroup(deployment, session)
    removed += sns.delete_topic(deployment, session)
    removed += iam.delete_roles(deployment, session)
    if delete_data:
        removed += s3.delete_bucket(deployment, session)
    return removed


def connectivity(deployment: Deployment, session: boto3.Session) -> list[tuple[str, str]]:
    """Who we are, and whether each resource setup made answers: ("ok" or the error)."""
    d = deployment
    glue_client, athena_client = session.client("glue"), session.client("athena")
    sfn = session.client("stepfunctions")
    return [
        ("caller", caller_arn(session)),
        ("bucket", _answers(lambda: session.client("s3").head_bucket(Bucket=d.bucket))),
        ("Glue database", _answers(lambda: glue_client.get_database(Name=d.database))),
        ("Glue crawler", _answers(lambda: glue_client.get_crawler(Name=d.crawler))),
        (
            "Athena workgroup",
            _answers(lambda: athena_client.get_work_group(WorkGroup=d.workgroup)),
        ),
        (
            "state machine",
            _answers(lambda: sfn.describe_state_machine(stateMachineArn=d.state_machine_arn)),
        ),
    ]


def _answers(call: Callable[[], object]) -> str:
    """ "ok", or the error AWS gave (access denied, not found) as one line."""
    try:
        call()
    except Exception as error:  # botocore ClientError and friends: show, do not stop
        return f"FAILED: {error}"
    return "ok"
