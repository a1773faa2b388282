"""The AWS path on a fresh account, against moto: setup waits out IAM propagation, teardown
leaves nothing running (executions, clusters) and says what it could not remove, notebook 02
orders its steps and stops at a failed one, notebook 04's crawl must be this run's and succeed,
``aws doctor`` reads everything it needs, and every boto3 call made has a row in the permission
table."""

from __future__ import annotations

import json

import boto3
import moto_tls
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.emr.models import emr_backends
from moto.glue.models import glue_backends

from rental_kpis import queries
from rental_kpis.aws import deploy, doctor, emr, iam, permissions, stepfunctions
from rental_kpis.aws.deploy import TeardownWaits
from rental_kpis.aws.emr import ClusterSpec
from rental_kpis.aws.iam import Propagation
from rental_kpis.aws.names import Deployment
from rental_kpis.cli import main
from rental_kpis.errors import CrawlFailed, EmrStepFailed, TeardownIncomplete, UsageError
from rental_kpis.layout import DATASETS
from rental_kpis.spark.schemas import RAW_COLUMNS
from rental_kpis.stages import SPARK_STAGES
from rental_kpis.walkthrough import AwsBackend

REGION = "eu-west-1"
BUCKET = "rental-kpis-hardening-test"
FAST_TEARDOWN = TeardownWaits(delay_seconds=0, max_attempts=3)


@pytest.fixture
def session(fake_aws_credentials):
    with mock_aws(), moto_tls.patched():
        yield boto3.Session(region_name=REGION)


@pytest.fixture
def raw(tmp_path):
    folder = tmp_path / "raw"
    for dataset in DATASETS:
        (folder / dataset).mkdir(parents=True)
        header = ",".join(c.name for c in RAW_COLUMNS[dataset])
        (folder / dataset / f"{dataset}.csv").write_text(header + "\nx\n")
    return folder


class Recorder:
    """What ``Propagation`` says and sleeps, instead of sleeping."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self.slept: list[float] = []

    def propagation(self) -> Propagation:
        return Propagation(
            delays=(1.0, 2.0, 4.0), waiter_delay=0, sleep=self.slept.append, say=self.said.append
        )


def fail_first(session: boto3.Session, event: str, code: str, message: str, times: int = 1):
    """Answer the first ``times`` calls of ``event`` as AWS answers while a new role has not
    propagated yet (botocore's before-call hook short-circuits them); later calls reach moto."""
    left = {"n": times}

    def handler(**_):
        if left["n"] == 0:
            return None
        left["n"] -= 1
        response = AWSResponse("https://moto", 400, {}, None)
        return response, {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}}

    session.events.register(f"before-call.{event}", handler)


# ---------------------------------------------------------------- setup


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


# ---------------------------------------------------------------- teardown


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


# ---------------------------------------------------------------- notebook 02 and 03


def moto_cluster(d: Deployment, session: boto3.Session, cluster_id: str):
    account = session.client("sts").get_caller_identity()["Account"]
    return emr_backends[account][REGION].clusters[cluster_id]


@pytest.fixture
def glue_crawl_statuses(monkeypatch):
    """moto ends a crawl with LastCrawl.Status COMPLETED; AWS says SUCCEEDED, CANCELLED or
    FAILED (Glue API, LastCrawlInfo). Let moto's crawler take AWS's SUCCEEDED as an ended crawl."""
    from moto.glue.models import FakeCrawler

    original = FakeCrawler.status.fget

    def status(self) -> str:
        if self.crawls and self.crawls[-1].status == "SUCCEEDED":
            return "READY"
        return original(self)

    monkeypatch.setattr(FakeCrawler, "status", property(status))


@pytest.fixture
def backend(session, raw, glue_crawl_statuses):
    deploy.setup(BUCKET, REGION, raw=raw, session=session)
    return AwsBackend(BUCKET, REGION, raw, session=session)


def step_driver(backend: AwsBackend, outcome: dict[str, str]):
    """The ``sleep`` of ``run_steps``: records which steps the cluster holds at each poll, then
    ends every running step the way ``outcome`` says (moto keeps steps running until told)."""
    seen: list[list[str]] = []

    def sleep(_: float) -> None:
        [cluster_id] = [c["Id"] for c in backend.session.client("emr").list_clusters()["Clusters"]]
        cluster = moto_cluster(backend.deployment, backend.session, cluster_id)
        seen.append([step.name for step in cluster.steps])
        for step in cluster.steps:
            if step.state in ("PENDING", "RUNNING"):
                step.state = outcome.get(step.name, "COMPLETED")

    return sleep, seen


def it_runs_validate_raw_to_completion_before_submitting_the_kpi_steps(backend):
    sleep, seen = step_driver(backend, {})
    timeline = backend.run_steps("run-02", poll_seconds=0, sleep=sleep)
    assert seen[0] == ["validate_raw"]  # the KPI steps wait for curated/
    assert seen[-1] == list(SPARK_STAGES)
    assert timeline["stage"].tolist() == list(SPARK_STAGES)
    assert set(timeline["status"]) == {"completed"}
    [cluster] = backend.session.client("emr").list_clusters()["Clusters"]
    assert cluster["Status"]["State"] == "TERMINATED"


def it_retries_the_cluster_while_emr_refuses_a_new_instance_profile(backend):
    """Right after setup EMR may answer RunJobFlow "Invalid InstanceProfile" until IAM has
    propagated the profile: notebook 02 sends the request again after each delay."""
    profile = backend.deployment.emr_ec2_role
    fail_first(
        backend.session,
        "emr.RunJobFlow",
        "ValidationException",
        f"Invalid InstanceProfile: {profile}.",
        times=2,
    )
    seen = Recorder()
    wait = emr.RoleWait(delays=(1.0, 2.0, 4.0), sleep=seen.slept.append, say=seen.said.append)
    sleep, _ = step_driver(backend, {})
    timeline = backend.run_steps("run-iam", poll_seconds=0, sleep=sleep, role_wait=wait)
    assert set(timeline["status"]) == {"completed"}
    assert seen.slept == [1.0, 2.0]
    assert len(seen.said) == 2 and "Invalid InstanceProfile" in seen.said[0]
    assert "attempt 1 of 4" in seen.said[0]
    assert len(backend.session.client("emr").list_clusters()["Clusters"]) == 1


def it_gives_up_on_the_instance_profile_in_one_line_and_starts_no_cluster(backend):
    profile = backend.deployment.emr_ec2_role
    fail_first(
        backend.session,
        "emr.RunJobFlow",
        "ValidationException",
        f"Invalid InstanceProfile: {profile}.",
        times=9,
    )
    seen = Recorder()
    wait = emr.RoleWait(delays=(1.0, 2.0), sleep=seen.slept.append)
    with pytest.raises(emr.ClusterRolesNotReady) as error:
        backend.run_steps("run-iam", poll_seconds=0, sleep=lambda _: None, role_wait=wait)
    assert seen.slept == [1.0, 2.0]
    message = str(error.value)
    assert "\n" not in message
    assert "after 3 attempts over 3 s" in message
    assert f"Invalid InstanceProfile: {profile}" in message
    assert f"rental-kpis aws setup --bucket {BUCKET}" in message
    assert backend.session.client("emr").list_clusters()["Clusters"] == []


def it_does_not_retry_another_refusal_of_the_cluster(backend):
    fail_first(
        backend.session,
        "emr.RunJobFlow",
        "ValidationException",
        "The requested instance type m5.xlarge is not supported in the requested availability "
        "zone.",
        times=1,
    )
    seen = Recorder()
    wait = emr.RoleWait(delays=(1.0,), sleep=seen.slept.append)
    with pytest.raises(ClientError, match="not supported in the requested availability zone"):
        backend.run_steps("run-az", poll_seconds=0, sleep=lambda _: None, role_wait=wait)
    assert seen.slept == []


def it_stops_at_a_failed_validate_raw_and_names_its_log(backend):
    sleep, seen = step_driver(backend, {"validate_raw": "FAILED"})
    with pytest.raises(EmrStepFailed) as error:
        backend.run_steps("run-bad", poll_seconds=0, sleep=sleep)
    [cluster] = backend.session.client("emr").list_clusters()["Clusters"]
    assert error.value.step == "validate_raw" and error.value.state == "FAILED"
    assert error.value.log.startswith(f"s3://{BUCKET}/emr-logs/{cluster['Id']}/steps/s-")
    assert "EMR step validate_raw ended FAILED" in str(error.value)
    assert all(names == ["validate_raw"] for names in seen)  # no KPI step was submitted
    assert cluster["Status"]["State"] == "TERMINATED"


def end_crawl(backend: AwsBackend, status: str, message: str | None = None):
    def sleep(_: float) -> None:
        account = backend.deployment.account_id
        crawler = glue_backends[account][REGION].crawlers[backend.deployment.crawler]
        crawler.crawls[-1].status = status
        if message:
            crawler.crawls[-1].error_message = message

    return sleep


def it_fails_the_crawl_with_glues_message_and_the_log_place(backend):
    sleep = end_crawl(backend, "FAILED")
    with pytest.raises(CrawlFailed) as error:
        backend.crawl(poll_seconds=0, sleep=sleep)
    message = str(error.value)
    assert f"crawl of {backend.deployment.crawler} ended FAILED" in message
    assert f"group /aws-glue/crawlers, stream {backend.deployment.crawler}" in message


def it_accepts_a_crawl_of_this_run_that_succeeded(backend):
    catalog = backend.crawl(poll_seconds=0, sleep=end_crawl(backend, "SUCCEEDED"))
    assert list(catalog.columns)[:3] == ["table", "column", "type"]


def it_times_out_when_the_crawl_never_ends(backend):
    with pytest.raises(CrawlFailed, match="is still running after 0 s"):
        backend.crawl(poll_seconds=0, timeout_seconds=0, sleep=lambda _: None)


# ---------------------------------------------------------------- notebook 05, region


def put_summaries(session: boto3.Session, run_id: str, finished: str) -> None:
    for step in SPARK_STAGES:
        summary = {
            "step": step,
            "status": "succeeded",
            "started_at": "2026-01-01T10:00:00+00:00",
            "finished_at": finished,
            "timings_seconds": {"total": 12.5},
            "versions": {"spark": "3.5.6"},
        }
        session.client("s3").put_object(
            Bucket=BUCKET, Key=f"runs/{run_id}/{step}.json", Body=json.dumps(summary)
        )


def it_reports_a_run_of_notebook_02_that_has_no_execution(backend):
    put_summaries(backend.session, "run-old", "2026-01-01T10:05:00+00:00")
    put_summaries(backend.session, "run-02", "2026-01-02T10:05:00+00:00")
    backend.session.client("s3").put_object(  # a run cut short: not complete, not the newest
        Bucket=BUCKET, Key="runs/run-partial/validate_raw.json", Body=b"{}"
    )
    assert backend.current_run_id() == "run-02"
    facts = backend.run_facts("run-02")["value"]
    assert (facts["run id"], facts["status"], facts["spark version"]) == (
        "run-02",
        "succeeded",
        "3.5.6",
    )
    assert facts["stage validate_raw"] == "12.5 s (succeeded)"
    assert backend.run_timeline("run-02")["stage"].tolist() == list(SPARK_STAGES)


def it_takes_the_region_from_the_configuration_and_refuses_the_wrong_one(backend, raw, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    assert AwsBackend(BUCKET, "", raw).deployment.region == REGION
    with pytest.raises(UsageError, match=f"bucket {BUCKET} is in {REGION}, not us-east-1"):
        AwsBackend(BUCKET, "us-east-1", raw)


# ---------------------------------------------------------------- aws doctor


def it_runs_the_doctor_read_only_with_one_line_per_check(session, raw, capsys):
    args = ["aws", "doctor", "--bucket", BUCKET, "--region", REGION]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"rental-kpis aws doctor: bucket {BUCKET}, region {REGION}"
    lines = {line[2:24].strip(): line for line in out[1:-1]}
    assert list(lines) == [
        "credentials",
        "cluster",
        "EMR release",
        "instance types",
        "network",
        "EMR security groups",
        "vCPU quota",
        "EMR clean-up role",
        "earlier setup",
        "cost of one run",
    ]
    assert lines["credentials"].startswith("✔") and "account 123456789012" in lines["credentials"]
    assert lines["cluster"].endswith(
        "1 × m5.xlarge (primary only), default VPC, idle stop 3600 s (the default)"
    )
    assert lines["EMR release"].startswith("✔") and "emr-7.13.0 offered" in lines["EMR release"]
    assert lines["network"].startswith("✔") and "default VPC vpc-" in lines["network"]
    # moto answers no EC2 quota: the check says so, with the fix, and does not fail the run
    assert lines["vCPU quota"].startswith("!")
    assert "needs 4 vCPUs for 1 × m5.xlarge (primary only)" in lines["vCPU quota"]
    assert "--quota-code L-1216C47A --desired-value 4" in lines["vCPU quota"]
    assert lines["earlier setup"].startswith("✔") and "nothing" in lines["earlier setup"]
    assert "≈ USD 0.27 (approximate: 1 × m5.xlarge (primary only)" in lines["cost of one run"]
    assert session.client("s3").list_buckets()["Buckets"] == []  # read-only

    d = deploy.setup(BUCKET, REGION, raw=raw, session=session).deployment
    cluster = emr.create_cluster(d, deploy.deployed_cluster(d, session), session=session)
    assert main(args) == 1
    out = capsys.readouterr().out
    assert f"✘ earlier setup          cluster(s) {cluster} running and billing" in out
    assert f"→ rental-kpis aws teardown --bucket {BUCKET}" in out
    assert main([*args, "--subnet-id", "subnet-0123456789abcdef0"]) == 1
    assert "subnet subnet-0123456789abcdef0 not found" in capsys.readouterr().out


def it_asks_to_tag_emr_security_groups_made_before_the_v2_policies(session):
    """EMR tags the managed security groups it creates, not older ones ("Amazon EMR managed
    policies", "Automatically-tagged security groups"); the service role may change the rules
    only of tagged groups, so doctor names the untagged ones and the command that tags them."""
    ec2 = session.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    spec = ClusterSpec()
    fresh = doctor.security_groups_check(spec, session)
    assert fresh.status == doctor.OK and "none yet" in fresh.detail
    old = ec2.create_security_group(
        GroupName="ElasticMapReduce-master", Description="old", VpcId=vpc["VpcId"]
    )["GroupId"]
    found = doctor.security_groups_check(spec, session)
    assert found.status == doctor.WARN and old in found.detail
    assert f"aws ec2 create-tags --resources {old} --tags " in found.line()
    tag = {"Key": "for-use-with-amazon-emr-managed-policies", "Value": "true"}
    ec2.create_tags(Resources=[old], Tags=[tag])
    assert doctor.security_groups_check(spec, session).status == doctor.OK


def it_prices_only_the_instance_types_it_knows():
    unknown = doctor.cost_check(ClusterSpec(master_instance_type="x9.mega"))
    assert unknown.status == doctor.WARN


# ---------------------------------------------------------------- the permission table


def it_has_a_row_for_every_call_the_student_makes(session, raw, monkeypatch, glue_crawl_statuses):
    """Every boto3/awswrangler operation of setup, the notebooks' backend, doctor, run and
    teardown (recorded at botocore's before-call) appears in ``student_calls``."""
    from test_aws_athena import queue_athena_result

    called: set[str] = set()

    def record(model, **_):
        called.add(f"{model.service_model.service_name}.{model.name}")

    session.events.register("before-call", record)
    monkeypatch.setattr(boto3, "Session", lambda *a, **k: session)  # doctor, CLI, backend
    assert main(["aws", "doctor", "--bucket", BUCKET, "--region", REGION]) == 0
    deploy.setup(BUCKET, REGION, raw=raw, notify_email="s@example.com", session=session)
    backend = AwsBackend(BUCKET, REGION, raw, session=session)
    backend.upload_raw(), backend.verify_raw(), backend.connectivity()
    backend.run_steps("run-02", poll_seconds=0, sleep=step_driver(backend, {})[0])
    backend.crawl(poll_seconds=0, sleep=end_crawl(backend, "SUCCEEDED"))
    queue_athena_result(REGION, ["a"], [["1"]])
    backend.query("most_rented_vehicle_type")
    put_summaries(session, "run-02", "2026-01-02T10:05:00+00:00")
    backend.current_run_id(), backend.run_facts("run-02")
    for _ in queries.all_queries():  # notebook 03 completes run-02: crawl, queries, record
        queue_athena_result(REGION, ["a"], [["1"]])
    backend.pending_stages("run-02")
    backend.run_pipeline("run-02", poll_seconds=0, sleep=end_crawl(backend, "SUCCEEDED"))
    backend.run_timeline("run-02")
    arn = stepfunctions.start_run(backend.deployment, session, "run-04")
    stepfunctions.follow_run(arn, session, poll_seconds=0, timeout_seconds=0)
    put_summaries(session, "run-04", "2026-01-03T10:05:00+00:00")
    backend.run_facts("run-04")
    deploy.teardown(BUCKET, REGION, delete_data=True, session=session, waits=FAST_TEARDOWN)

    rows = {c.api for c in permissions.student_calls(backend.deployment)}
    assert called - rows - permissions.NO_PERMISSION_NEEDED == set()
    assert len(called) > 60
