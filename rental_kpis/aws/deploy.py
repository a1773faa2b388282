"""``rental-kpis aws setup / run / teardown``: everything the pipeline needs in one account,
created idempotently (a second setup changes nothing), followed while it runs, and removed with
one command so a student stops paying.

Every client comes from ``boto3.Session``, which honours ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_<SERVICE>``: the same code runs against moto_server in the tests.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from rental_kpis.aws import iam, statemachine
from rental_kpis.aws.emr import LIBRARY_ZIP, ClusterSpec
from rental_kpis.aws.names import Deployment
from rental_kpis.layout import DATASETS, ZONES
from rental_kpis.spark import PROJECT_DIR, build_library_zip

STEP_SCRIPTS = PROJECT_DIR / "emr_steps"
EXPIRING_PREFIXES = ("query-results/", "emr-logs/")
EXPIRE_AFTER_DAYS = 30


@dataclass
class SetupReport:
    deployment: Deployment
    changed: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)


def session_for(region: str) -> boto3.Session:
    return boto3.Session(region_name=region)


def deployment_for(bucket: str, region: str, session: boto3.Session) -> Deployment:
    account = session.client("sts").get_caller_identity()["Account"]
    return Deployment(bucket, region, account)


# --- S3 ----------------------------------------------------------------------------------


def bucket_policy(deployment: Deployment) -> dict[str, Any]:
    arn = f"arn:{deployment.partition}:s3:::{deployment.bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def lifecycle_rules() -> list[dict[str, Any]]:
    return [
        {
            "ID": f"expire-{prefix.rstrip('/')}",
            "Filter": {"Prefix": prefix},
            "Status": "Enabled",
            "Expiration": {"Days": EXPIRE_AFTER_DAYS},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }
        for prefix in EXPIRING_PREFIXES
    ]


PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}


def ensure_bucket(deployment: Deployment, session: boto3.Session) -> list[str]:
    s3 = session.client("s3")
    bucket = deployment.bucket
    changed: list[str] = []
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        extra = (
            {}
            if deployment.region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": deployment.region}}
        )
        s3.create_bucket(Bucket=bucket, **extra)
        changed.append(f"bucket {bucket}")

    def current(call: Callable[[], dict], key: str) -> Any:
        try:
            return call().get(key)
        except s3.exceptions.ClientError:
            return None

    if (
        current(lambda: s3.get_public_access_block(Bucket=bucket), "PublicAccessBlockConfiguration")
        != PUBLIC_ACCESS_BLOCK
    ):
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK
        )
        changed.append("block public access")
    rules = current(
        lambda: s3.get_bucket_encryption(Bucket=bucket), "ServerSideEncryptionConfiguration"
    )
    if (
        not rules
        or rules.get("Rules", [{}])[0].get("ApplyServerSideEncryptionByDefault")
        != ENCRYPTION["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    ):
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=ENCRYPTION)
        changed.append("default encryption")
    if s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        changed.append("versioning")
    policy = current(lambda: s3.get_bucket_policy(Bucket=bucket), "Policy")
    if policy is None or json.loads(policy) != bucket_policy(deployment):
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(bucket_policy(deployment)))
        changed.append("TLS-only bucket policy")
    if (
        current(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket), "Rules")
        != lifecycle_rules()
    ):
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": lifecycle_rules()}
        )
        changed.append("lifecycle rules")
    for zone in ZONES:
        if _put_if_changed(s3, bucket, f"{zone}/", b""):
            changed.append(f"prefix {zone}/")
    return changed


def _put_if_changed(s3, bucket: str, key: str, body: bytes) -> bool:
    """Upload unless the object already holds these bytes (single-part ETag = MD5)."""
    digest = hashlib.md5(body).hexdigest()
    try:
        if s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"') == digest:
            return False
    except s3.exceptions.ClientError:
        pass
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return True


def upload_inputs(deployment: Deployment, session: boto3.Session, raw: Path) -> list[str]:
    """Upload ``raw/<dataset>/*.csv``, the step scripts and the library zip (unchanged: skipped)."""
    s3 = session.client("s3")
    files: dict[str, Path] = {}
    for dataset in DATASETS:
        for path in sorted((raw / dataset).glob("*.csv")):
            files[f"raw/{dataset}/{path.name}"] = path
    missing = [d for d in DATASETS if not any(k.startswith(f"raw/{d}/") for k in files)]
    if missing:
        raise FileNotFoundError(
            f"{raw}: no CSV for {', '.join(missing)} (expected {raw}/<dataset>/*.csv)"
        )
    for script in sorted(STEP_SCRIPTS.glob("*.py")):
        files[f"scripts/{script.name}"] = script
    uploaded = []
    with tempfile.TemporaryDirectory() as tmp:
        files[f"scripts/{LIBRARY_ZIP}"] = build_library_zip(Path(tmp))
        for key, path in files.items():
            if _put_if_changed(s3, deployment.bucket, key, path.read_bytes()):
                uploaded.append(key)
    return uploaded


# --- Glue, Athena, SNS, Step Functions -------------------------------------------------------


def crawler_spec(deployment: Deployment) -> dict[str, Any]:
    return {
        "Name": deployment.crawler,
        "Role": deployment.role_arn(deployment.glue_crawler_role),
        "DatabaseName": deployment.database,
        "Targets": {"S3Targets": [{"Path": p} for p in deployment.processed_prefixes]},
        "SchemaChangePolicy": {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"},
        "RecrawlPolicy": {"RecrawlBehavior": "CRAWL_EVERYTHING"},
    }


def ensure_catalog(deployment: Deployment, session: boto3.Session) -> list[str]:
    glue = session.client("glue")
    changed = []
    try:
        glue.get_database(Name=deployment.database)
    except glue.exceptions.EntityNotFoundException:
        glue.create_database(
            DatabaseInput={"Name": deployment.database, "Description": "rental_kpis KPI tables"}
        )
        changed.append(f"database {deployment.database}")
    spec = crawler_spec(deployment)
    try:
        current = glue.get_crawler(Name=deployment.crawler)["Crawler"]
    except glue.exceptions.EntityNotFoundException:
        glue.create_crawler(**spec, Tags={"project": "rental_kpis"})
        return [*changed, f"crawler {deployment.crawler}"]
    same = (
        current.get("Role") in (spec["Role"], deployment.glue_crawler_role)
        and current.get("DatabaseName") == spec["DatabaseName"]
        and [t["Path"] for t in current["Targets"].get("S3Targets", [])]
        == deployment.processed_prefixes
    )
    if not same:
        glue.update_crawler(**spec)
        changed.append(f"crawler {deployment.crawler} targets")
    return changed


def workgroup_configuration(deployment: Deployment) -> dict[str, Any]:
    return {
        "ResultConfiguration": {
            "OutputLocation": deployment.lake.uri("query-results") + "/",
            "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
        },
        "EnforceWorkGroupConfiguration": True,
        "PublishCloudWatchMetricsEnabled": True,
    }


def ensure_workgroup(deployment: Deployment, session: boto3.Session) -> list[str]:
    athena = session.client("athena")
    wanted = workgroup_configuration(deployment)
    names = {w["Name"] for w in athena.list_work_groups()["WorkGroups"]}
    current = None
    if deployment.workgroup in names:
        current = athena.get_work_group(WorkGroup=deployment.workgroup)["WorkGroup"][
            "Configuration"
        ]
    if current is None:
        athena.create_work_group(
            Name=deployment.workgroup, Configuration=wanted, Description="rental_kpis named queries"
        )
        return [f"workgroup {deployment.workgroup}"]
    location = current.get("ResultConfiguration", {}).get("OutputLocation")
    if location != wanted["ResultConfiguration"]["OutputLocation"]:
        athena.update_work_group(
            WorkGroup=deployment.workgroup,
            ConfigurationUpdates={
                "ResultConfigurationUpdates": {
                    "OutputLocation": wanted["ResultConfiguration"]["OutputLocation"]
                },
                "EnforceWorkGroupConfiguration": True,
            },
        )
        return [f"workgroup {deployment.workgroup} output location"]
    return []


def ensure_topic(deployment: Deployment, session: boto3.Session, email: str | None) -> list[str]:
    sns = session.client("sns")
    existing = {
        t["TopicArn"]
        for page in sns.get_paginator("list_topics").paginate()
        for t in page["Topics"]
    }
    changed = []
    if deployment.topic_arn not in existing:
        sns.create_topic(Name=deployment.topic, Tags=[{"Key": "project", "Value": "rental_kpis"}])
        changed.append(f"topic {deployment.topic}")
    if email:
        subs = sns.list_subscriptions_by_topic(TopicArn=deployment.topic_arn)["Subscriptions"]
        if email not in {s["Endpoint"] for s in subs}:
            sns.subscribe(TopicArn=deployment.topic_arn, Protocol="email", Endpoint=email)
            changed.append(f"email subscription {email} (confirm the e-mail AWS sends)")
    return changed


def ensure_state_machine(
    deployment: Deployment, session: boto3.Session, spec: ClusterSpec | None = None
) -> list[str]:
    sfn = session.client("stepfunctions")
    definition = statemachine.render(deployment, spec)
    role = deployment.role_arn(deployment.stepfunctions_role)
    try:
        current = sfn.describe_state_machine(stateMachineArn=deployment.state_machine_arn)
    except sfn.exceptions.StateMachineDoesNotExist:
        sfn.create_state_machine(
            name=deployment.state_machine,
            definition=json.dumps(definition),
            roleArn=role,
            tags=[{"key": "project", "value": "rental_kpis"}],
        )
        return [f"state machine {deployment.state_machine}"]
    if json.loads(current["definition"]) != definition or current["roleArn"] != role:
        sfn.update_state_machine(
            stateMachineArn=deployment.state_machine_arn,
            definition=json.dumps(definition),
            roleArn=role,
        )
        return [f"state machine {deployment.state_machine} definition"]
    return []


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
    report.changed += ensure_bucket(deployment, session)
    report.uploaded += upload_inputs(deployment, session, raw)
    report.changed += iam.ensure_roles(deployment, session)
    report.changed += ensure_catalog(deployment, session)
    report.changed += ensure_workgroup(deployment, session)
    report.changed += ensure_topic(deployment, session, notify_email)
    report.changed += ensure_state_machine(deployment, session, spec)
    return report


# --- run ---------------------------------------------------------------------------------------


@dataclass
class RunOutcome:
    execution_arn: str
    status: str
    error: str | None
    cause: str | None
    states: list[tuple[str, float]]
    events: list[dict[str, Any]] = field(default_factory=list)  # the history, as last read


def start_run(deployment: Deployment, session: boto3.Session, run_id: str) -> str:
    sfn = session.client("stepfunctions")
    return sfn.start_execution(
        stateMachineArn=deployment.state_machine_arn, name=run_id, input="{}"
    )["executionArn"]


def follow_run(
    execution_arn: str,
    session: boto3.Session,
    *,
    poll_seconds: float = 10.0,
    timeout_seconds: float = 4 * 3600,
    on_state: Callable[[str, float], None] | None = None,
) -> RunOutcome:
    """Poll the execution, reporting each state as it is entered with the time since start.
    After ``timeout_seconds`` it returns with status RUNNING; the execution carries on."""
    sfn = session.client("stepfunctions")
    started = time.monotonic()
    seen = 0
    states: list[tuple[str, float]] = []
    while True:
        desc = sfn.describe_execution(executionArn=execution_arn)  # before the history: a
        events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        begin = desc["startDate"]
        for event in events[seen:]:
            details = event.get("stateEnteredEventDetails")
            if details:
                elapsed = (event["timestamp"] - begin).total_seconds()
                states.append((details["name"], elapsed))
                if on_state:
                    on_state(details["name"], elapsed)
        seen = len(events)
        if desc["status"] != "RUNNING":  # finished run's history is then complete
            return RunOutcome(
                execution_arn, desc["status"], desc.get("error"), desc.get("cause"), states, events
            )
        if time.monotonic() - started > timeout_seconds:
            # Stop following, not the run: the state machine goes on (and cleans up) by itself.
            return RunOutcome(execution_arn, "RUNNING", None, None, states, events)
        time.sleep(poll_seconds)


# --- teardown ----------------------------------------------------------------------------------


def teardown(
    bucket: str, region: str, *, delete_data: bool = False, session: boto3.Session | None = None
) -> list[str]:
    """Remove everything setup made; the bucket (every object version) only with ``delete_data``."""
    session = session or session_for(region)
    deployment = deployment_for(bucket, region, session)
    removed: list[str] = []
    sfn = session.client("stepfunctions")
    try:
        sfn.describe_state_machine(stateMachineArn=deployment.state_machine_arn)
        sfn.delete_state_machine(stateMachineArn=deployment.state_machine_arn)
        removed.append(f"state machine {deployment.state_machine}")
    except sfn.exceptions.StateMachineDoesNotExist:
        pass
    glue = session.client("glue")
    for kind, getter, deleter, key in (
        ("crawler", glue.get_crawler, glue.delete_crawler, deployment.crawler),
        ("database", glue.get_database, glue.delete_database, deployment.database),
    ):
        try:
            getter(Name=key)
            deleter(Name=key)
            removed.append(f"{kind} {key}")
        except glue.exceptions.EntityNotFoundException:
            pass
    athena = session.client("athena")
    names = {w["Name"] for w in athena.list_work_groups()["WorkGroups"]}
    if deployment.workgroup in names:
        athena.delete_work_group(WorkGroup=deployment.workgroup, RecursiveDeleteOption=True)
        removed.append(f"workgroup {deployment.workgroup}")
    sns = session.client("sns")
    topics = {
        t["TopicArn"]
        for page in sns.get_paginator("list_topics").paginate()
        for t in page["Topics"]
    }
    if deployment.topic_arn in topics:
        sns.delete_topic(TopicArn=deployment.topic_arn)
        removed.append(f"topic {deployment.topic}")
    removed += iam.delete_roles(deployment, session)
    if delete_data:
        removed += _delete_bucket(deployment, session)
    return removed


def _delete_bucket(deployment: Deployment, session: boto3.Session) -> list[str]:
    s3 = session.client("s3")
    try:
        s3.head_bucket(Bucket=deployment.bucket)
    except s3.exceptions.ClientError:
        return []
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=deployment.bucket):
        doomed = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        for start in range(0, len(doomed), 1000):
            s3.delete_objects(
                Bucket=deployment.bucket, Delete={"Objects": doomed[start : start + 1000]}
            )
    s3.delete_bucket(Bucket=deployment.bucket)
    return [f"bucket {deployment.bucket} and every object version"]
