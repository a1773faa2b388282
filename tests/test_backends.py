"""What the notebooks call: the shared pure helpers, and the AWS backend against moto (notebook
02 orders its steps and stops at a failed one, the crawl must be this run's and succeed, a run
of notebook 02 is reported without an execution)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import moto_tls
import pytest
from botocore.exceptions import ClientError
from iam_propagation import Recorder, fail_first
from moto import mock_aws
from moto.emr.models import emr_backends
from moto.glue.models import glue_backends

from rental_kpis import walkthrough as backends  # the notebooks call it walkthrough
from rental_kpis.aws import deploy, emr
from rental_kpis.aws.names import Deployment
from rental_kpis.errors import CrawlFailed, EmrStepFailed, InputError, UsageError
from rental_kpis.layout import DATASETS, Lake
from rental_kpis.spark.schemas import RAW_COLUMNS
from rental_kpis.stages import SPARK_STAGES
from rental_kpis.walkthrough import AwsBackend

REGION = "eu-west-1"
BUCKET = "rental-kpis-notebook-test"
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def session(fake_aws_credentials):
    with mock_aws(), moto_tls.patched():
        yield boto3.Session(region_name=REGION)


def header(dataset: str) -> str:
    return ",".join(c.name for c in RAW_COLUMNS[dataset])


@pytest.fixture
def raw(tmp_path):
    folder = tmp_path / "raw"
    for dataset in DATASETS:
        (folder / dataset).mkdir(parents=True)
        body = header(dataset) + "\n" + "\n".join(["x," * 3] * 2) + "\n"
        (folder / dataset / f"{dataset}.csv").write_text(body)
    return folder


def it_counts_records_not_lines_and_names_missing_columns():
    data = (header("users") + '\nu1,"Ann\nMarie",x\nu2,Bo,y\n').encode()
    row = backends.inspect_csv("users", "users.csv", data)
    assert (row["rows"], row["schema ok"], row["missing columns"]) == (2, True, "")
    bad = backends.inspect_csv("users", "u.csv", b"user_id,first_name\nu1,Ann\n")
    assert not bad["schema ok"]
    assert bad["missing columns"].startswith("last_name, email, phone_number")


def it_verifies_every_raw_file_spec_allows_gzip_and_upper_case_included(tmp_path, raw):
    import gzip

    users = raw / "users"
    body = (users / "users.csv").read_bytes()
    (users / "more.CSV").write_bytes(body)
    (users / "packed.csv.gz").write_bytes(gzip.compress(body))
    local = backends.open_backend("local", lake=tmp_path / "lake", raw=raw)
    local.upload_raw()
    check = local.verify_raw().set_index(["dataset", "file"])
    assert [check.loc[("users", name), "rows"] for name in ("more.CSV", "packed.csv.gz")] == [2, 2]
    assert check["schema ok"].all()


def it_reports_a_dataset_without_files_as_a_failed_check():
    check = backends.raw_check([("users", "users.csv", (header("users") + "\n").encode())])
    assert check.set_index("dataset").loc["locations", "file"] == "(no CSV file)"
    assert dict(zip(check["dataset"], check["schema ok"], strict=True)) == {
        "locations": False, "vehicles": False, "users": True, "rental_transactions": False,
    }  # fmt: skip


def it_turns_stage_times_into_a_timeline():
    stages = [
        {"stage": "a", "status": "succeeded", "started": "2026-01-01T12:00:01.500+00:00",
         "finished": "2026-01-01T12:00:04+00:00"},
        {"stage": "b", "status": "failed", "started": "2026-01-01T12:00:00+00:00",
         "finished": None},
    ]  # fmt: skip
    frame = backends.stage_timeline(stages)
    assert frame.values.tolist() == [["a", "succeeded", 1.5, 4.0, 2.5], ["b", "failed", 0, 0, 0]]


def it_reads_an_execution_history_including_a_state_entered_twice():
    def event(seconds, kind, name=None):
        item = {"timestamp": T0 + timedelta(seconds=seconds), "type": kind}
        if name and kind.endswith("Entered"):
            item["stateEnteredEventDetails"] = {"name": name}
        if name and kind.endswith("Exited"):
            item["stateExitedEventDetails"] = {"name": name}
        return item

    events = [
        event(0, "ExecutionStarted"),
        event(0, "TaskStateEntered", "Wait"),
        event(5, "TaskStateExited", "Wait"),
        event(5, "TaskStateEntered", "Wait"),
        event(9, "TaskStateExited", "Wait"),
        event(9, "TaskStateEntered", "Notify"),
        event(10, "ExecutionFailed"),
    ]
    frame = backends.execution_timeline(events)
    assert frame[["stage", "status", "start_s", "end_s"]].values.tolist() == [
        ["Wait", "succeeded", 0.0, 5.0],
        ["Wait", "succeeded", 5.0, 9.0],
        ["Notify", "failed", 9.0, 10.0],
    ]


def it_lists_run_facts_with_versions_and_stage_times():
    record = {
        "run_id": "r1", "status": "succeeded", "started_at": "s", "finished_at": "f",
        "stages": {"validate_raw": {"status": "succeeded", "seconds": 12.345}},
    }  # fmt: skip
    facts = backends.run_facts(record, {"validate_raw": {"versions": {"spark": "3.5.6"}}})
    assert facts["value"].to_dict() == {
        "run id": "r1",
        "status": "succeeded",
        "started (UTC)": "s",
        "finished (UTC)": "f",
        "spark version": "3.5.6",
        "stage validate_raw": "12.3 s (succeeded)",
    }


def it_shows_cluster_steps_and_roles_from_the_same_builders_as_aws():
    deployment = backends.deployment_of(BUCKET, REGION)
    cluster = backends.cluster_table(emr.cluster_config(deployment))["value"]
    assert cluster["release"] == "emr-7.13.0"
    assert cluster["logs"] == f"s3://{BUCKET}/emr-logs/"
    steps = backends.steps_table(deployment, "run-1")
    assert steps.loc["validate_raw", "command"] == " ".join(
        emr.step_args(deployment, "validate_raw", "run-1")
    )
    states = ["ValidateRaw", "VehicleLocationMetrics", "UserTransactionMetrics"]
    assert steps["state"].tolist() == states
    roles = backends.roles_table(deployment)
    assert roles.loc[deployment.glue_crawler_role, "assumed by"] == "glue.amazonaws.com"
    policies = backends.policy_table(deployment)
    assert set(policies["role"]) == set(deployment.roles.values())
    assert not policies["actions"].str.contains(r"\*", regex=True).any()


def it_refuses_an_unknown_backend_or_aws_without_a_bucket():
    with pytest.raises(ValueError, match='backend must be "local" or "aws"'):
        backends.open_backend("azure")
    with pytest.raises(ValueError, match="needs bucket="):
        backends.open_backend("aws")


# ---------------------------------------------------------------- the aws backend on moto


@pytest.fixture
def aws(fake_aws_credentials, raw):
    with mock_aws(), moto_tls.patched():
        session = boto3.Session(region_name=REGION)
        deploy.setup(BUCKET, REGION, raw=raw, session=session)
        yield backends.AwsBackend(BUCKET, REGION, raw, session=session)


def it_uploads_and_verifies_the_raw_zone_on_s3(aws):
    uploaded = aws.upload_raw()
    assert not uploaded["uploaded now"].any()  # setup uploaded them; nothing changed since
    assert {f"raw/{d}/{d}.csv" for d in DATASETS} <= set(uploaded.index)
    check = aws.verify_raw()
    assert check["schema ok"].all()
    assert check["rows"].tolist() == [2, 2, 2, 2]


def it_checks_every_service_of_the_deployment(aws):
    checks = aws.connectivity()["result"].to_dict()
    assert checks["caller"].startswith("arn:aws:")
    assert {k: v for k, v in checks.items() if k != "caller"} == {
        "bucket": "ok",
        "Glue database": "ok",
        "Glue crawler": "ok",
        "Athena workgroup": "ok",
        "state machine": "ok",
    }


def it_reads_step_summaries_and_the_catalog_from_aws(aws):
    s3 = aws.session.client("s3")
    summary = {"step": "validate_raw", "datasets": {}}
    s3.put_object(Bucket=BUCKET, Key="runs/r1/validate_raw.json", Body=json.dumps(summary))
    assert aws.step_summary("r1", "validate_raw") == summary
    aws.session.client("glue").create_table(
        DatabaseName="rental_marketplace",
        TableInput={
            "Name": "daily_metrics",
            "StorageDescriptor": {
                "Columns": [{"Name": "rental_date", "Type": "date"}],
                "Location": f"s3://{BUCKET}/processed/daily_metrics/",
            },
            "PartitionKeys": [{"Name": "year", "Type": "int"}],
        },
    )
    assert aws.catalog()[["table", "column", "type", "partition key"]].values.tolist() == [
        ["daily_metrics", "rental_date", "date", False],
        ["daily_metrics", "year", "int", True],
    ]


def it_sums_up_a_passing_raw_check_and_names_every_failing_file():
    good = (header("users") + "\nu1\nu2\n").encode()
    files = [(d, f"{d}.csv", (header(d) + "\nx\n").encode()) for d in DATASETS]
    passing = backends.raw_check(files)
    assert backends.raw_verdict(passing) == (
        "4 files, 4 rows: every dataset has the SPEC §1 columns."
    )
    failing = backends.raw_check([("users", "users.csv", good), ("users", "old.csv", b"user_id\n")])
    with pytest.raises(InputError) as error:
        backends.raw_verdict(failing)
    assert "users/old.csv: missing first_name, last_name" in str(error.value)
    assert "locations/(no CSV file): missing the whole dataset" in str(error.value)


def it_summarises_the_catalog_per_table():
    columns = backends.catalog_frame(
        [
            ("daily_metrics", "s3://b/processed/daily_metrics", [("rental_date", "date")],
             [("year", "int"), ("month", "int")]),
            ("user_metrics", "s3://b/processed/user_metrics", [("user_id", "string")], []),
        ]
    )  # fmt: skip
    tables = backends.catalog_tables(columns)
    assert tables.reset_index().values.tolist() == [
        ["daily_metrics", 3, "s3://b/processed/daily_metrics", "year, month"],
        ["user_metrics", 1, "s3://b/processed/user_metrics", ""],
    ]


def it_gives_the_object_key_of_a_lake_uri_and_refuses_one_outside():
    lake = Lake("s3://bucket")
    assert lake.key(lake.run_summary("r1", "validate_raw")) == "runs/r1/validate_raw.json"
    with pytest.raises(ValueError, match="not under the lake root s3://bucket"):
        lake.key("s3://other/runs/x.json")


def moto_cluster(d: Deployment, session: boto3.Session, cluster_id: str):
    account = session.client("sts").get_caller_identity()["Account"]
    return emr_backends[account][REGION].clusters[cluster_id]


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
