"""``rental-kpis aws setup / teardown`` and the EMR calls, against moto (an AWS API emulator)."""

from __future__ import annotations

import json

import boto3
import moto_tls
import pytest
from moto import mock_aws

from rental_kpis.aws import deploy, emr
from rental_kpis.aws.names import Deployment
from rental_kpis.errors import InputError
from rental_kpis.layout import DATASETS, TABLES, ZONES

REGION = "eu-west-1"
BUCKET = "rental-kpis-students-test"


@pytest.fixture
def session(fake_aws_credentials):
    with mock_aws(), moto_tls.patched():
        yield boto3.Session(region_name=REGION)


@pytest.fixture
def raw(tmp_path):
    folder = tmp_path / "raw"
    for dataset in DATASETS:
        (folder / dataset).mkdir(parents=True)
        (folder / dataset / f"{dataset}.csv").write_text("id\n1\n")
    return folder


def it_sets_up_a_hardened_bucket_with_the_lake_prefixes_and_the_uploads(session, raw):
    report = deploy.setup(BUCKET, REGION, raw=raw, session=session)
    s3 = session.client("s3")
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    rules = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    [statement] = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    # Bucket-wide (issue 13): old versions of replaced objects expire, lone delete markers go.
    [bucket_wide] = [r for r in lifecycle if not r["Filter"].get("Prefix")]
    assert bucket_wide["NoncurrentVersionExpiration"]["NoncurrentDays"] == 7
    assert bucket_wide["Expiration"] == {"ExpiredObjectDeleteMarker": True}
    lifecycle = [r for r in lifecycle if r["Filter"].get("Prefix")]
    assert {r["Filter"]["Prefix"] for r in lifecycle} == {"query-results/", "emr-logs/"}
    assert all(r["Expiration"]["Days"] == 30 for r in lifecycle)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert {f"{zone}/" for zone in ZONES} <= keys
    assert {f"raw/{d}/{d}.csv" for d in DATASETS} <= keys
    assert {
        "scripts/rental_kpis.zip",
        "scripts/validate_raw.py",
        "scripts/vehicle_location_metrics.py",
        "scripts/user_transaction_metrics.py",
    } <= keys
    assert set(report.uploaded) == {k for k in keys if not k.endswith("/")}


def it_creates_roles_catalog_workgroup_topic_and_state_machine(session, raw):
    d = deploy.setup(
        BUCKET, REGION, raw=raw, notify_email="student@example.com", session=session
    ).deployment
    iam = session.client("iam")
    for stem, role in d.roles.items():
        policy = iam.get_role_policy(RoleName=role, PolicyName="rental-kpis-least-privilege")
        assert BUCKET in json.dumps(policy["PolicyDocument"]) or stem == "emr_service_role"
        assert "${" not in json.dumps(policy["PolicyDocument"])
    profile = iam.get_instance_profile(InstanceProfileName=d.emr_ec2_role)["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [d.emr_ec2_role]
    glue = session.client("glue")
    crawler = glue.get_crawler(Name=d.crawler)["Crawler"]
    paths = [t["Path"] for t in crawler["Targets"]["S3Targets"]]
    assert paths == [f"s3://{BUCKET}/processed/{t}/" for t in TABLES]
    assert crawler["DatabaseName"] == "rental_marketplace"
    assert crawler["Role"].endswith(d.glue_crawler_role)
    assert glue.get_database(Name="rental_marketplace")["Database"]["Name"] == "rental_marketplace"
    wg = session.client("athena").get_work_group(WorkGroup=d.workgroup)["WorkGroup"]
    assert (
        wg["Configuration"]["ResultConfiguration"]["OutputLocation"]
        == f"s3://{BUCKET}/query-results/"
    )
    subs = session.client("sns").list_subscriptions_by_topic(TopicArn=d.topic_arn)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [("email", "student@example.com")]
    machine = session.client("stepfunctions").describe_state_machine(
        stateMachineArn=d.state_machine_arn
    )
    assert machine["roleArn"] == d.role_arn(d.stepfunctions_role)
    assert json.loads(machine["definition"])["StartAt"] == "CreateCluster"


def it_changes_nothing_on_a_second_setup(session, raw):
    first = deploy.setup(
        BUCKET, REGION, raw=raw, notify_email="student@example.com", session=session
    )
    assert first.changed and first.uploaded
    second = deploy.setup(
        BUCKET, REGION, raw=raw, notify_email="student@example.com", session=session
    )
    assert (second.changed, second.uploaded) == ([], [])


def it_uploads_only_what_changed(session, raw):
    deploy.setup(BUCKET, REGION, raw=raw, session=session)
    (raw / "users" / "users.csv").write_text("id\n1\n2\n")
    assert deploy.setup(BUCKET, REGION, raw=raw, session=session).uploaded == [
        "raw/users/users.csv"
    ]


def it_refuses_a_raw_folder_missing_a_dataset(session, raw):
    for path in (raw / "vehicles").iterdir():
        path.unlink()
    with pytest.raises(InputError, match="dataset 'vehicles': no CSV files in"):
        deploy.setup(BUCKET, REGION, raw=raw, session=session)


def it_tears_down_everything_and_the_bucket_only_when_asked(session, raw):
    d = deploy.setup(BUCKET, REGION, raw=raw, session=session).deployment
    removed = deploy.teardown(BUCKET, REGION, session=session)
    assert f"state machine {d.state_machine}" in removed and f"crawler {d.crawler}" in removed
    assert session.client("stepfunctions").list_state_machines()["stateMachines"] == []
    assert session.client("glue").get_crawlers()["Crawlers"] == []
    assert session.client("glue").get_databases()["DatabaseList"] == []
    assert d.workgroup not in {
        w["Name"] for w in session.client("athena").list_work_groups()["WorkGroups"]
    }
    assert session.client("sns").list_topics()["Topics"] == []
    iam = session.client("iam")
    assert [
        r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("rental-kpis")
    ] == []
    assert iam.list_instance_profiles()["InstanceProfiles"] == []
    assert session.client("s3").head_bucket(Bucket=BUCKET)  # data kept
    assert deploy.teardown(BUCKET, REGION, session=session) == []  # nothing left to remove
    assert deploy.teardown(BUCKET, REGION, delete_data=True, session=session) == [
        f"bucket {BUCKET} and every object version"
    ]
    assert session.client("s3").list_buckets()["Buckets"] == []


def it_builds_the_cluster_and_steps_emr_accepts(session):
    d = Deployment(BUCKET, REGION, "123456789012")
    config = emr.cluster_config(d, emr.ClusterSpec(core_instance_count=3))
    assert config["ReleaseLabel"].startswith("emr-7.")
    assert config["LogUri"] == f"s3://{BUCKET}/emr-logs/"
    assert config["AutoTerminationPolicy"] == {"IdleTimeout": 3600}
    assert config["StepConcurrencyLevel"] == 2
    cluster_id = emr.create_cluster(d, emr.ClusterSpec(core_instance_count=3), session=session)
    described = session.client("emr").describe_cluster(ClusterId=cluster_id)["Cluster"]
    assert described["ReleaseLabel"] == config["ReleaseLabel"]
    assert described["StepConcurrencyLevel"] == 2
    steps = emr.add_steps(d, cluster_id, "run-7", session=session)
    assert list(steps) == ["validate_raw", "vehicle_location_metrics", "user_transaction_metrics"]
    step = session.client("emr").describe_step(ClusterId=cluster_id, StepId=steps["validate_raw"])[
        "Step"
    ]
    args = step["Config"]["Args"]
    assert args[:3] == ["spark-submit", "--deploy-mode", "cluster"]
    assert args[args.index("--py-files") + 1] == f"s3://{BUCKET}/scripts/rental_kpis.zip"
    assert args[-5:] == [
        f"s3://{BUCKET}/scripts/validate_raw.py",
        "--lake-root",
        f"s3://{BUCKET}",
        "--run-id",
        "run-7",
    ]
    assert step["ActionOnFailure"] == "CONTINUE"
    seen = []

    def wait(timeout: float) -> dict:
        return emr.wait_for_steps(
            d,
            cluster_id,
            steps,
            poll_seconds=0.01,
            timeout_seconds=timeout,
            on_status=lambda n, s, t: seen.append((n, s)),
            session=session,
        )

    with pytest.raises(TimeoutError, match="steps still running"):
        wait(0.05)  # moto leaves steps RUNNING / PENDING until told otherwise
    assert seen == [
        ("validate_raw", "RUNNING"),
        ("vehicle_location_metrics", "PENDING"),
        ("user_transaction_metrics", "PENDING"),
    ]
    from moto.emr.models import emr_backends

    for step in emr_backends["123456789012"][REGION].clusters[cluster_id].steps:
        step.state = "COMPLETED"
    seen.clear()
    assert wait(5) == dict.fromkeys(steps, "COMPLETED")
    assert [s for _, s in seen] == ["COMPLETED"] * 3
    assert emr.step_log_location(d, cluster_id, steps["validate_raw"]) == (
        f"s3://{BUCKET}/emr-logs/{cluster_id}/steps/{steps['validate_raw']}/"
    )
    emr.terminate_cluster(d, cluster_id, session=session)
    assert session.client("emr").describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"][
        "State"
    ] in ("TERMINATING", "TERMINATED")


def it_refuses_a_cluster_that_cannot_run_the_kpi_steps_in_parallel():
    with pytest.raises(ValueError, match="at least 2"):
        emr.ClusterSpec(step_concurrency=1)
    with pytest.raises(ValueError, match=r"emr-7\.x"):
        emr.ClusterSpec(release_label="emr-6.15.0")
