"""``rental-kpis aws setup / teardown``: the order in which the services are set up and removed.

Setup creates everything idempotently (a second setup changes nothing); teardown removes it
with one command so a student stops paying. Each service's own calls live in its module
(``s3``, ``iam``, ``glue``, ``athena``, ``sns``, ``stepfunctions``); this module only orders them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from rental_kpis.aws import athena, emr, glue, iam, s3, sns, statemachine, stepfunctions
from rental_kpis.aws.emr import ClusterSpec
from rental_kpis.aws.iam import Propagation
from rental_kpis.aws.names import Deployment
from rental_kpis.aws.sts import caller_arn, deployment_for, session_for
from rental_kpis.errors import TeardownIncomplete


@dataclass
class SetupReport:
    deployment: Deployment
    cluster: ClusterSpec
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
    propagation: Propagation | None = None,
) -> SetupReport:
    """Create or bring up to date everything the pipeline needs. Safe to run again.

    ``spec`` is the deployment's cluster, recorded in the state machine's CreateCluster, where
    every later cluster is built from (``deployed_cluster``); None keeps the cluster already
    deployed, or takes the default one on a first setup.
    IAM first, then what uses its roles: the crawler and the state machine are created with
    retries while the new roles propagate (``propagation`` says so while it waits)."""
    session = session or session_for(region)
    propagation = propagation or Propagation()
    deployment = deployment_for(bucket, region, session)
    spec = spec or deployed_cluster(deployment, session) or ClusterSpec()
    report = SetupReport(deployment, spec)
    report.changed += s3.ensure_bucket(deployment, session)
    report.uploaded += s3.upload_inputs(deployment, session, raw)
    report.changed += iam.ensure_roles(deployment, session, propagation)
    report.changed += iam.ensure_cleanup_role(session)
    report.changed += glue.ensure_catalog(deployment, session, propagation)
    report.changed += athena.ensure_workgroup(deployment, session)
    report.changed += sns.ensure_topic(deployment, session, notify_email)
    report.changed += stepfunctions.ensure_state_machine(deployment, session, spec, propagation)
    return report


def deployed_cluster(deployment: Deployment, session: boto3.Session) -> ClusterSpec | None:
    """The deployment's cluster as setup recorded it: the request the deployed state machine's
    CreateCluster sends, read back into a ``ClusterSpec``; None before the first setup.

    The state machine is the one place the choice lives, so the clusters the notebooks start
    (``AwsBackend.run_steps``), the state machine's and ``aws doctor``'s checks agree, and
    ``aws run --subnet-id`` (which edits that definition) moves them all."""
    sfn = session.client("stepfunctions")
    try:
        current = sfn.describe_state_machine(stateMachineArn=deployment.state_machine_arn)
    except sfn.exceptions.StateMachineDoesNotExist:
        return None
    request = statemachine.cluster_request(json.loads(current["definition"]))
    return ClusterSpec.from_request(request)


@dataclass(frozen=True)
class TeardownWaits:
    """How long teardown waits for EMR to report a terminated cluster (tests shrink it)."""

    delay_seconds: int = 30
    max_attempts: int = 60


def teardown(
    bucket: str,
    region: str,
    *,
    delete_data: bool = False,
    session: boto3.Session | None = None,
    waits: TeardownWaits | None = None,
) -> list[str]:
    """Remove everything setup made; the bucket (every object version) only with ``delete_data``.

    Order: stop running executions (they would create or drive a cluster), terminate this
    deployment's active clusters and wait, then the rest. A step that fails does not end
    teardown silently: the independent steps still run, and ``TeardownIncomplete`` lists what
    is left and what to do; the roles stay while a cluster may still be running (EMR needs its
    service role to stop the cluster's instances)."""
    session = session or session_for(region)
    waits = waits or TeardownWaits()
    d = deployment_for(bucket, region, session)
    removed: list[str] = []
    problems: list[str] = []

    def attempt(what: str, fix: str, call: Callable[[], list[str]]) -> bool:
        try:
            removed.extend(call())
        except Exception as error:
            if not type(error).__module__.startswith(("botocore", "boto3")):
                raise
            problems.append(f"{what}: {_one_line(error)} ({fix})")
            return False
        return True

    attempt(
        "stopping running executions",
        f"stop them in the Step Functions console ({d.state_machine}), then run teardown again",
        lambda: stepfunctions.stop_running(d, session),
    )
    clusters_gone = attempt(
        "terminating the project's clusters",
        f"terminate clusters named {d.cluster_name} in the EMR console, then run teardown again",
        lambda: emr.terminate_project_clusters(
            d, session, delay_seconds=waits.delay_seconds, max_attempts=waits.max_attempts
        ),
    )
    again = "then run teardown again"
    attempt(
        "deleting the state machine", again, lambda: stepfunctions.delete_state_machine(d, session)
    )
    attempt(
        "deleting the crawler's log streams", again, lambda: glue.delete_crawler_logs(d, session)
    )
    attempt(
        "deleting the crawler and database",
        f"a crawl may be running: wait for crawler {d.crawler} to be READY, {again}",
        lambda: glue.delete_catalog(d, session),
    )
    attempt("deleting the Athena workgroup", again, lambda: athena.delete_workgroup(d, session))
    attempt("deleting the SNS topic", again, lambda: sns.delete_topic(d, session))
    if clusters_gone:
        attempt(
            "deleting the roles",
            f"detach or delete what still uses the rental-kpis-*-{d.suffix} roles, {again}",
            lambda: iam.delete_roles(d, session),
        )
    else:
        problems.append("kept the roles: EMR needs them until the clusters are terminated")
    if delete_data:
        attempt(
            "deleting the bucket",
            f"empty s3://{d.bucket} in the S3 console (every version), {again}",
            lambda: s3.delete_bucket(d, session),
        )
    if problems:
        raise TeardownIncomplete(removed, problems)
    return removed


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


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
