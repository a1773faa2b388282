"""``rental-kpis aws setup / teardown`` and the EMR calls, against moto (an AWS API emulator):
setup waits out IAM propagation, teardown leaves nothing running (executions, clusters) and
says what it could not remove."""

from __future__ import annotations

import json

import boto3
import moto_tls
import pytest
from iam_propagation import Recorder, fail_first
from moto import mock_aws
from moto.emr.models import emr_backends

from rental_kpis.aws import deploy, emr, iam, stepfunctions
from rental_kpis.aws.deploy import TeardownWaits
from rental_kpis.aws.names import Deployment
from rental_kpis.cli import main
from rental_kpis.errors import InputError, TeardownIncomplete
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
    # Bucket-wide: old versions of replaced objects expire, lone delete markers go.
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


FAST_TEARDOWN = TeardownWaits(delay_seconds=0, max_attempts=3)


def it_waits_for_iam_to_propagate_and_retries_the_dependent_creates(session, raw):
    fail_first(
        session,
        "glue.CreateCrawler",
        "InvalidInputException",
        "Service is unable to assume provided role. Please verify role's TrustPolicy",
        times=2,
    )
    fail_first(
        session,
        "sfn.CreateStateMachine",
        "AccessDeniedException",
        "Neither the global service principal states.amazonaws.com, nor the regional one is "
        "authorized to assume the provided role.",
    )
    seen = Recorder()
    report = deploy.setup(BUCKET, REGION, raw=raw, session=session, propagation=seen.propagation())
    d = report.deployment
    assert session.client("glue").get_crawler(Name=d.crawler)["Crawler"]["Name"] == d.crawler
    sfn = session.client("stepfunctions")
    assert sfn.describe_state_machine(stateMachineArn=d.state_machine_arn)["name"]
    assert seen.slept == [1.0, 2.0, 1.0]  # two waits for the crawler, one for the machine
    waits = [m for m in seen.said if "to propagate" in m]
    assert len(waits) == 3
    assert f"before creating crawler {d.crawler}" in waits[0]
    assert "InvalidInputException" in waits[0]
    assert f"before creating state machine {d.state_machine}" in waits[2]
    assert "waiting until IAM reports the new roles and instance profile" in seen.said
    assert f"EMR clean-up service-linked role {iam.CLEANUP_ROLE}" in report.changed


def it_gives_up_after_its_last_delay_and_never_retries_another_error(session, raw):
    fail_first(session, "glue.CreateCrawler", "InvalidInputException", "unable to assume role", 9)
    seen = Recorder()
    with pytest.raises(session.client("glue").exceptions.InvalidInputException):
        deploy.setup(BUCKET, REGION, raw=raw, session=session, propagation=seen.propagation())
    assert seen.slept == [1.0, 2.0, 4.0]
    fresh = boto3.Session(region_name=REGION)
    fail_first(fresh, "glue.CreateCrawler", "InvalidInputException", "bad target path", 1)
    seen = Recorder()
    with pytest.raises(fresh.client("glue").exceptions.InvalidInputException):
        deploy.setup(BUCKET, REGION, raw=raw, session=fresh, propagation=seen.propagation())
    assert seen.slept == []


def it_creates_the_emr_cleanup_role_once(session):
    assert iam.ensure_cleanup_role(session) == [
        f"EMR clean-up service-linked role {iam.CLEANUP_ROLE}"
    ]
    assert iam.ensure_cleanup_role(session) == []  # "has been taken": already there


def it_stops_running_executions_and_terminates_the_projects_clusters(session, raw):
    d = deploy.setup(BUCKET, REGION, raw=raw, session=session).deployment
    sfn = session.client("stepfunctions")
    first = stepfunctions.start_run(d, session, "stopped-first")
    assert stepfunctions.stop_running(d, session) == ["running execution stopped-first (stopped)"]
    assert sfn.describe_execution(executionArn=first)["status"] == "ABORTED"
    stepfunctions.start_run(d, session, "left-running")
    ours = emr.create_cluster(d, deploy.deployed_cluster(d, session), session=session)
    stranger = session.client("emr").run_job_flow(
        Name="someone-elses-cluster",
        ReleaseLabel="emr-7.13.0",
        Instances={
            "InstanceGroups": [
                {"InstanceRole": "MASTER", "InstanceType": "m5.xlarge", "InstanceCount": 1}
            ],
            "KeepJobFlowAliveWhenNoSteps": True,
        },
        JobFlowRole="x",
        ServiceRole="y",
    )["JobFlowId"]
    assert emr.project_clusters(d, session) == [ours]
    client = session.client("iam")
    arn = client.create_policy(
        PolicyName="student-extra",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}
                ],
            }
        ),
    )["Policy"]["Arn"]
    client.attach_role_policy(RoleName=d.emr_ec2_role, PolicyArn=arn)
    logs = session.client("logs")
    logs.create_log_group(logGroupName="/aws-glue/crawlers")
    logs.create_log_stream(logGroupName="/aws-glue/crawlers", logStreamName=d.crawler)
    logs.create_log_stream(logGroupName="/aws-glue/crawlers", logStreamName="other-crawler")

    removed = deploy.teardown(BUCKET, REGION, session=session, waits=FAST_TEARDOWN)

    assert removed[:2] == [
        "running execution left-running (stopped)",
        f"cluster {ours} (terminated)",
    ]
    state = session.client("emr").describe_cluster(ClusterId=ours)["Cluster"]["Status"]["State"]
    assert state == "TERMINATED"
    other = session.client("emr").describe_cluster(ClusterId=stranger)["Cluster"]["Status"]
    assert other["State"] in emr.ACTIVE_STATES  # not the project's: left alone
    assert f"managed policy student-extra from role {d.emr_ec2_role}" in removed
    assert f"role {d.emr_ec2_role}" in removed
    streams = logs.describe_log_streams(logGroupName="/aws-glue/crawlers")["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["other-crawler"]
    assert client.get_policy(PolicyArn=arn)["Policy"]["PolicyName"] == "student-extra"


def it_says_what_is_left_and_what_to_do_when_teardown_meets_a_conflict(session, raw):
    d = deploy.setup(BUCKET, REGION, raw=raw, session=session).deployment
    client = session.client("iam")
    client.create_instance_profile(InstanceProfileName="students-own-profile")
    client.add_role_to_instance_profile(
        InstanceProfileName="students-own-profile", RoleName=d.glue_crawler_role
    )
    with pytest.raises(TeardownIncomplete) as error:
        deploy.teardown(BUCKET, REGION, session=session, waits=FAST_TEARDOWN)
    message = str(error.value)
    assert message.startswith("teardown incomplete: deleting the roles:")
    assert "DeleteConflict" in message
    assert f"detach or delete what still uses the rental-kpis-*-{d.suffix} roles" in message
    assert f"state machine {d.state_machine}" in error.value.removed  # the rest went on
    assert session.client("stepfunctions").list_state_machines()["stateMachines"] == []
    client.remove_role_from_instance_profile(
        InstanceProfileName="students-own-profile", RoleName=d.glue_crawler_role
    )
    assert f"role {d.glue_crawler_role}" in deploy.teardown(
        BUCKET, REGION, session=session, waits=FAST_TEARDOWN
    )


def it_prints_the_conflict_as_one_line_and_exits_2(session, raw, capsys):
    d = deploy.setup(BUCKET, REGION, raw=raw, session=session).deployment
    client = session.client("iam")
    client.create_instance_profile(InstanceProfileName="students-own-profile")
    client.add_role_to_instance_profile(
        InstanceProfileName="students-own-profile", RoleName=d.stepfunctions_role
    )
    code = main(["aws", "teardown", "--bucket", BUCKET, "--region", REGION])
    out, err = capsys.readouterr()
    assert code == 2
    assert f"removed state machine {d.state_machine}" in out
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("rental-kpis: error: teardown incomplete: deleting the roles")
