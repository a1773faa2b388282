"""The deployment's one cluster, against moto: every cluster the project creates is built from
the shape ``rental-kpis aws setup`` recorded (the state machine's, the notebooks', the report's),
the default shape fits a new account's On-Demand vCPU quota, ``aws doctor`` computes what a
shape needs and what to request, and notebook 03 completes the run notebook 02 started on EMR
instead of starting a second cluster."""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path

import boto3
import moto_tls
import pytest
import requests
from moto import mock_aws
from moto.core.config import default_user_config
from moto.emr.models import emr_backends
from moto.emr.responses import ElasticMapReduceResponse
from moto.glue.models import FakeCrawler
from moto.s3.models import s3_backends
from moto.servicequotas.models import ServiceQuotasBackend

from rental_kpis import queries
from rental_kpis.aws import deploy, emr, statemachine
from rental_kpis.aws.emr import ClusterSpec
from rental_kpis.aws.names import Deployment
from rental_kpis.cli import main
from rental_kpis.errors import CrawlFailed, RunFailed, UsageError
from rental_kpis.layout import DATASETS
from rental_kpis.spark.schemas import RAW_COLUMNS
from rental_kpis.stages import SPARK_STAGES
from rental_kpis.walkthrough import AwsBackend

REGION = "eu-west-1"
BUCKET = "rental-kpis-cluster-test"
ACCOUNT = "123456789012"  # moto's
AWS = ["--bucket", BUCKET, "--region", REGION]


@pytest.fixture
def aws(fake_aws_credentials, monkeypatch):
    """moto, running state machines for real; the CLI's own sessions are this one."""
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        moto_tls.patched(),
    ):
        session = boto3.Session(region_name=REGION)
        monkeypatch.setattr(boto3, "Session", lambda *a, **k: session)
        yield session


@pytest.fixture
def raw(tmp_path):
    folder = tmp_path / "raw"
    for dataset in DATASETS:
        (folder / dataset).mkdir(parents=True)
        header = ",".join(c.name for c in RAW_COLUMNS[dataset])
        (folder / dataset / f"{dataset}.csv").write_text(header + "\nx\n")
    return folder


@pytest.fixture
def crawls(monkeypatch) -> dict[str, str]:
    """How moto's crawls end: at once, with the LastCrawl.Status AWS gives (SUCCEEDED or FAILED:
    Glue API, "LastCrawlInfo"; moto says COMPLETED after a while). Set ``["status"]`` to change
    how the next crawls end."""
    outcome = {"status": "SUCCEEDED"}
    start = FakeCrawler.start_crawler
    status = FakeCrawler.status.fget

    def start_crawler(self) -> None:
        start(self)
        self.crawls[-1].status = outcome["status"]

    def ended(self) -> str:
        if self.crawls and self.crawls[-1].status in ("SUCCEEDED", "FAILED"):
            return "READY"
        return status(self)

    monkeypatch.setattr(FakeCrawler, "start_crawler", start_crawler)
    monkeypatch.setattr(FakeCrawler, "status", property(ended))
    return outcome


# How doctor names the quota the project's m5 nodes count against.
STANDARD = "Standard (A, C, D, H, I, M, R, T, Z) (L-1216C47A)"


def ec2_quota(monkeypatch, vcpus: float) -> None:
    """Give moto's Service Quotas the EC2 On-Demand Standard quota a new account may have
    (moto carries quotas for VPC only)."""
    found = ServiceQuotasBackend.get_service_quota

    def get_service_quota(self, service_code: str, quota_code: str):
        if (service_code, quota_code) == ("ec2", "L-1216C47A"):
            return {
                "ServiceCode": "ec2",
                "QuotaCode": "L-1216C47A",
                "QuotaName": "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
                "Value": vcpus,
                "Unit": "None",
                "Adjustable": True,
                "GlobalQuota": False,
            }
        return found(self, service_code, quota_code)

    monkeypatch.setattr(ServiceQuotasBackend, "get_service_quota", get_service_quota)


def sent(session: boto3.Session, operation: str) -> list[dict]:
    """The body of every ``operation`` request this session sends from now on (JSON protocol
    services: EMR, Step Functions), as it leaves botocore."""
    bodies: list[dict] = []
    session.events.register(
        f"before-call.{operation}", lambda params, **_: bodies.append(json.loads(params["body"]))
    )
    return bodies


def default_subnet(session: boto3.Session) -> str:
    ec2 = session.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    return subnets["Subnets"][0]["SubnetId"]


def summary(step: str, run_id: str) -> dict:
    """What a step writes to ``runs/<run_id>/<step>.json`` when it succeeds (steps.run_step)."""
    return {
        "step": step,
        "run_id": run_id,
        "status": "succeeded",
        "started_at": "2026-01-02T10:00:00+00:00",
        "finished_at": "2026-01-02T10:01:00+00:00",
        "timings_seconds": {"total": 60.0},
        "versions": {"rental_kpis": "0.1.0", "spark": "3.5.6", "python": "3.9"},
    }


def emr_runs_the_steps(session: boto3.Session):
    """The ``sleep`` of ``AwsBackend.run_steps``: moto keeps steps running until told, so each
    wait ends every step the clusters hold COMPLETED, with the summary the step leaves on S3."""

    def sleep(_: float) -> None:
        for cluster in emr_backends[ACCOUNT][REGION].clusters.values():
            for step in cluster.steps:
                if step.state in ("PENDING", "RUNNING"):
                    step.state = "COMPLETED"
                    run_id = step.args[step.args.index("--run-id") + 1]
                    session.client("s3").put_object(
                        Bucket=BUCKET,
                        Key=f"runs/{run_id}/{step.name}.json",
                        Body=json.dumps(summary(step.name, run_id)),
                    )

    return sleep


def queue_athena_results(url: str, count: int) -> None:
    """Queue ``count`` one-row Athena results in moto (its moto-api: moto runs no SQL)."""
    from test_aws_athena import queue_athena_result

    if url == "http://motoapi.amazonaws.com":
        for _ in range(count):
            queue_athena_result(REGION, ["answer"], [["1"]])
        return
    rows = [{"Data": [{"VarCharValue": "answer"}]}, {"Data": [{"VarCharValue": "1"}]}]
    column = {"Name": "answer", "Label": "answer", "Type": "varchar", "Nullable": "UNKNOWN"}
    result = {"rows": rows, "column_info": [column]}
    reply = requests.post(
        f"{url}/moto-api/static/athena/query-results",
        json={"results": [result] * count, "region": REGION},
        timeout=10,
    )
    assert reply.status_code == 201


# ---------------------------------------------------------------- one description


def it_builds_every_cluster_from_the_flags_setup_was_given(aws, raw, capsys):
    """A setup flag reaches the RunJobFlow request of the notebooks (``run_steps``, which
    ``rental-kpis report`` runs) and of the state machine (``aws run``): the same request."""
    subnet = default_subnet(aws)
    flags = ["--instance-type", "m5.2xlarge", "--core-instances", "1", "--idle-timeout", "900"]
    assert main(["aws", "setup", *AWS, "--raw", str(raw), *flags, "--subnet-id", subnet]) == 0
    d = Deployment(BUCKET, REGION, ACCOUNT)
    chosen = ClusterSpec(
        master_instance_type="m5.2xlarge",
        core_instance_type="m5.2xlarge",
        core_instance_count=1,
        idle_timeout_seconds=900,
        subnet_id=subnet,
    )
    wanted = emr.cluster_config(d, chosen)
    assert wanted["Instances"]["InstanceGroups"][1]["InstanceCount"] == 1
    run_job_flow = sent(aws, "emr.RunJobFlow")

    # Notebook 02 (and the report, which runs it): the cluster run_steps starts.
    backend = AwsBackend(BUCKET, REGION, raw, session=aws)
    backend.run_steps("nb-run", poll_seconds=0, sleep=emr_runs_the_steps(aws))
    assert run_job_flow == [emr.cluster_config(d, chosen, run_id="nb-run")]
    groups = aws.client("emr").list_instance_groups(ClusterId=_only_cluster(aws))
    [core] = [g for g in groups["InstanceGroups"] if g["InstanceGroupType"] == "CORE"]
    assert (core["InstanceType"], core["RequestedInstanceCount"]) == ("m5.2xlarge", 1)
    assert backend.cluster() == chosen
    assert backend.cluster_config() == wanted

    # `aws run`: the execution's CreateCluster asks EMR for this cluster (moto has no EMR
    # behind the integration, so the run then fails and exits 1).
    assert main(["aws", "run", *AWS, "--run-id", "cli-run", "--poll-seconds", "0"]) == 1
    history = aws.client("stepfunctions").get_execution_history(
        executionArn=d.execution_arn("cli-run")
    )["events"]
    scheduled = [e["taskScheduledEventDetails"] for e in history if e["type"] == "TaskScheduled"]
    [create] = [task for task in scheduled if task["resource"] == "createCluster"]
    tagged = emr.cluster_config(d, chosen, run_id="cli-run")  # the execution's name
    assert json.loads(create["parameters"]) == {
        k: v for k, v in tagged.items() if k != "AutoTerminationPolicy"
    }
    # ... and its SetIdleTimeout gives the cluster the idle policy: together, the same request.
    definition = aws.client("stepfunctions").describe_state_machine(
        stateMachineArn=d.state_machine_arn
    )["definition"]
    assert statemachine.cluster_request(json.loads(definition)) == wanted
    assert (
        f"cluster       1 primary + 1 core m5.2xlarge, emr-7.13.0, in subnet {subnet}, "
        "stops after 900 s idle"
    ) in capsys.readouterr().out


def it_terminates_the_cluster_a_run_lost_with_its_create_cluster(aws, raw, capsys):
    """CreateCluster can fail or time out after EMR accepted RunJobFlow: the run never learns
    the id. `aws run` finds the run's cluster by its run tag and terminates it, and no other."""
    assert main(["aws", "setup", *AWS, "--raw", str(raw)]) == 0
    d = Deployment(BUCKET, REGION, ACCOUNT)
    spec = deploy.deployed_cluster(d, aws)
    # The cluster EMR made for run lost-run, whose id the execution will not have; another
    # run's cluster, and one of another deployment (another name), which must be left alone.
    lost = emr.create_cluster(d, spec, session=aws, run_id="lost-run")
    other_run = emr.create_cluster(d, spec, session=aws, run_id="other-run")
    elsewhere = Deployment("someone-elses-bucket", REGION, ACCOUNT)
    foreign = emr.create_cluster(elsewhere, spec, session=aws, run_id="lost-run")
    capsys.readouterr()
    # moto has no EMR behind the createCluster integration: the Task fails without an id.
    assert main(["aws", "run", *AWS, "--run-id", "lost-run", "--poll-seconds", "0"]) == 1
    err = capsys.readouterr().err
    clusters = aws.client("emr").list_clusters()["Clusters"]
    state = {c["Id"]: c["Status"]["State"] for c in clusters}
    assert state[lost] in ("TERMINATING", "TERMINATED")
    assert "TERMINAT" not in state[other_run] and "TERMINAT" not in state[foreign]
    lines = [line for line in err.splitlines() if line.startswith("cluster ")]
    assert lines == [
        f"cluster {lost}: terminating (started by run lost-run, which never learnt its id)"
    ]


def _only_cluster(session: boto3.Session) -> str:
    [cluster] = session.client("emr").list_clusters()["Clusters"]
    return cluster["Id"]


def it_keeps_the_deployed_cluster_when_setup_runs_again_without_the_flags(aws, raw, capsys):
    subnet = default_subnet(aws)
    setup = ["aws", "setup", *AWS, "--raw", str(raw)]
    assert main([*setup, "--core-instances", "2", "--subnet-id", subnet]) == 0
    d = Deployment(BUCKET, REGION, ACCOUNT)
    shape = ClusterSpec(core_instance_count=2, subnet_id=subnet)
    assert deploy.deployed_cluster(d, aws) == shape
    capsys.readouterr()
    assert main(setup) == 0
    assert "nothing to change" in capsys.readouterr().out
    assert deploy.deployed_cluster(d, aws) == shape
    assert main([*setup, "--subnet-id", "default", "--idle-timeout", "600"]) == 0
    assert deploy.deployed_cluster(d, aws) == ClusterSpec(
        core_instance_count=2, idle_timeout_seconds=600
    )
    # `aws run --subnet-id` moves the deployment's clusters: the notebooks' too.
    main(["aws", "run", *AWS, "--subnet-id", subnet, "--run-id", "moved", "--poll-seconds", "0"])
    assert AwsBackend(BUCKET, REGION, raw, session=aws).cluster().subnet_id == subnet


@pytest.mark.parametrize(
    "command",
    [
        ["setup", "--core-instances", "-3"],
        ["setup", "--idle-timeout", "30"],
        ["setup", "--subnet-id", "sn-1"],
        ["setup", "--instance-type", "M5 XL"],
        ["doctor", "--core-instances", "-3"],
        ["run", "--subnet-id", "sn-1"],
    ],
)
def it_refuses_a_cluster_no_one_can_have_in_one_line(aws, raw, capsys, command):
    verb, *flags = command
    extra = ["--raw", str(raw)] if verb == "setup" else []
    assert main(["aws", verb, *AWS, *extra, *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rental-kpis: error: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert aws.client("s3").list_buckets()["Buckets"] == []  # nothing was made


def it_says_setup_comes_first_when_no_cluster_is_deployed(aws, raw):
    aws.client("s3").create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    backend = AwsBackend(BUCKET, REGION, raw, session=aws)
    with pytest.raises(UsageError, match=r"run `rental-kpis aws setup --bucket .* first"):
        backend.run_steps("no-setup", poll_seconds=0, sleep=lambda _: pytest.fail("it waited"))
    assert aws.client("emr").list_clusters()["Clusters"] == []


# ---------------------------------------------------------------- a new account's quota


def it_starts_one_primary_node_that_fits_a_five_vcpu_quota(aws, monkeypatch, capsys):
    """EMR runs single-node clusters (EMR Management Guide, "Overview of Amazon EMR"); one
    m5.xlarge has 4 vCPUs, within the 5 a new account may have ("On-Demand Instance quotas")."""
    spec = ClusterSpec()
    primary = {"Name": "primary", "InstanceRole": "MASTER", "InstanceType": "m5.xlarge"}
    assert emr.cluster_instances(spec)["InstanceGroups"] == [{**primary, "InstanceCount": 1}]
    d = Deployment(BUCKET, REGION, ACCOUNT)
    cluster = emr.create_cluster(d, spec, session=aws)
    groups = aws.client("emr").list_instance_groups(ClusterId=cluster)["InstanceGroups"]
    shapes = [
        (g["InstanceGroupType"], g["InstanceType"], g["RequestedInstanceCount"]) for g in groups
    ]
    assert shapes == [("MASTER", "m5.xlarge", 1)]

    ec2_quota(monkeypatch, 5.0)
    assert main(["aws", "doctor", *AWS]) == 1  # the running cluster uses 4 of the 5 vCPUs
    assert "5 − 4 in use = 1 free  → request 8: " in capsys.readouterr().out

    emr.terminate_cluster(d, cluster, session=aws)
    # moto leaves the nodes running; EMR terminates them with the cluster
    nodes = aws.client("emr").list_instances(ClusterId=cluster)["Instances"]
    aws.client("ec2").terminate_instances(InstanceIds=[n["Ec2InstanceId"] for n in nodes])
    assert main(["aws", "doctor", *AWS]) == 0
    out = capsys.readouterr().out
    assert (
        f"✔ vCPU quota             {STANDARD}: 4 vCPUs needed for 1 × m5.xlarge (primary only) "
        "(m5.xlarge: 4 vCPUs), 5 − 0 in use = 5 free"
    ) in out


def it_computes_what_a_shape_needs_and_the_exact_quota_to_request(aws, monkeypatch, capsys):
    ec2_quota(monkeypatch, 5.0)
    doctor = ["aws", "doctor", *AWS]

    assert main([*doctor, "--core-instances", "1"]) == 1
    [line] = [x for x in capsys.readouterr().out.splitlines() if "vCPU quota" in x]
    assert line.startswith(
        f"✘ vCPU quota             {STANDARD}: 8 vCPUs needed for 1 primary + 1 "
    )
    assert (
        "5 − 0 in use = 5 free  → request 8: aws service-quotas request-service-quota-increase "
        "--service-code ec2 --quota-code L-1216C47A --desired-value 8 --region eu-west-1"
    ) in line
    assert line.endswith("or run a cluster that fits: --core-instances 0 (4 vCPUs)")

    assert main([*doctor, "--instance-type", "m5.2xlarge"]) == 1
    [line] = [x for x in capsys.readouterr().out.splitlines() if "vCPU quota" in x]
    assert "8 vCPUs needed for 1 × m5.2xlarge (primary only) (m5.2xlarge: 8 vCPUs), 5 − 0 " in line
    assert "--desired-value 8 " in line and "--core-instances" not in line  # nothing smaller

    ec2_quota(monkeypatch, 32.0)
    assert main([*doctor, "--core-instances", "3", "--instance-type", "m5.2xlarge"]) == 0
    out = capsys.readouterr().out
    assert (
        f"✔ vCPU quota             {STANDARD}: 32 vCPUs needed for 1 primary + 3 core m5.2x" in out
    )
    assert "m5.2xlarge: 8 vCPUs), 32 − 0 in use = 32 free" in out
    assert "✔ cost of one run        ≈ USD 1.11 (approximate: 1 primary + 3 core m5.2xlarge" in out


def it_checks_the_deployed_cluster_unless_told_otherwise(aws, raw, monkeypatch, capsys):
    assert main(["aws", "setup", *AWS, "--raw", str(raw), "--core-instances", "2"]) == 0
    ec2_quota(monkeypatch, 5.0)
    capsys.readouterr()
    assert main(["aws", "doctor", *AWS]) == 1
    out = capsys.readouterr().out
    assert "1 primary + 2 core m5.xlarge, default VPC, idle stop 3600 s (as deployed)" in out
    assert "12 vCPUs needed for 1 primary + 2 core m5.xlarge (m5.xlarge: 4 vCPUs), 5 − 0 " in out
    assert "--desired-value 12 " in out and "--core-instances 0 (4 vCPUs)" in out
    assert main(["aws", "doctor", *AWS, "--core-instances", "0"]) == 0
    assert "(as deployed, with the flags given)" in capsys.readouterr().out


# ---------------------------------------------------------------- notebook 03 on AWS


@pytest.fixture
def deployed(aws, raw, crawls):
    deploy.setup(BUCKET, REGION, raw=raw, session=aws)
    return AwsBackend(BUCKET, REGION, raw, session=aws)


def it_completes_the_run_notebook_02_started_without_a_second_cluster(deployed, monkeypatch):
    backend, session = deployed, deployed.session
    run_job_flow = sent(session, "emr.RunJobFlow")
    start_execution = sent(session, "sfn.StartExecution")
    backend.run_steps("run-02", poll_seconds=0, sleep=emr_runs_the_steps(session))
    assert len(run_job_flow) == 1

    queue_athena_results("http://motoapi.amazonaws.com", len(queries.all_queries()))
    timeline = backend.run_pipeline("run-02", poll_seconds=0)  # the crawl ends at once

    assert (len(run_job_flow), start_execution) == (1, [])  # no second cluster, no execution
    assert timeline["stage"].tolist() == [*SPARK_STAGES, "crawl", "queries"]
    assert set(timeline["status"]) == {"succeeded"}
    d = backend.deployment
    crawler = session.client("glue").get_crawler(Name=d.crawler)["Crawler"]
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    ran = session.client("athena").list_query_executions(WorkGroup=d.workgroup)
    assert len(ran["QueryExecutionIds"]) == len(queries.all_queries())
    record = json.loads(
        session.client("s3").get_object(Bucket=BUCKET, Key="runs/run-02/run.json")["Body"].read()
    )
    assert record["status"] == "succeeded"
    assert {s: f["status"] for s, f in record["stages"].items()} == dict.fromkeys(
        [*SPARK_STAGES, "crawl", "queries"], "succeeded"
    )
    assert backend.pending_stages("run-02") == ()
    assert backend.pending_stages("run-02b") == (*SPARK_STAGES, "crawl", "queries", "notify")
    facts = backend.run_facts("run-02")["value"]
    assert facts["status"] == "succeeded" and facts["stage crawl"].endswith("(succeeded)")
    assert backend.run_timeline("run-02")["stage"].tolist() == timeline["stage"].tolist()
    assert backend.current_run_id() == "run-02"

    again = backend.run_pipeline("run-02", poll_seconds=0, sleep=lambda _: None)  # nothing left
    assert again["stage"].tolist() == timeline["stage"].tolist()
    assert len(session.client("athena").list_query_executions()["QueryExecutionIds"]) == len(
        queries.all_queries()
    )
    assert (len(run_job_flow), start_execution) == (1, [])


def it_records_a_failed_completion_stage_and_runs_it_again_next_time(deployed, crawls):
    backend, session = deployed, deployed.session
    backend.run_steps("run-02", poll_seconds=0, sleep=emr_runs_the_steps(session))
    crawls["status"] = "FAILED"
    with pytest.raises(CrawlFailed, match="ended FAILED"):
        backend.run_pipeline("run-02", poll_seconds=0, sleep=lambda _: None)
    record = json.loads(
        session.client("s3").get_object(Bucket=BUCKET, Key="runs/run-02/run.json")["Body"].read()
    )
    assert (record["status"], record["stages"]["crawl"]["status"]) == ("failed", "failed")
    assert record["error"].startswith("crawl: crawl of ")
    assert "queries" not in record["stages"]
    assert session.client("athena").list_query_executions()["QueryExecutionIds"] == []
    assert backend.pending_stages("run-02") == ("crawl", "queries")

    crawls["status"] = "SUCCEEDED"
    queue_athena_results("http://motoapi.amazonaws.com", len(queries.all_queries()))
    timeline = backend.run_pipeline("run-02", poll_seconds=0, sleep=lambda _: None)
    assert set(timeline["status"]) == {"succeeded"}
    assert backend.pending_stages("run-02") == ()


def it_runs_a_run_id_without_spark_steps_on_the_state_machine(deployed):
    """A run notebook 02 did not start is the state machine's, whole (its one cluster)."""
    backend, session = deployed, deployed.session
    start_execution = sent(session, "sfn.StartExecution")
    assert backend.pending_stages("whole") == (*SPARK_STAGES, "crawl", "queries", "notify")
    with pytest.raises(RunFailed, match="run whole FAILED"):  # moto has no EMR integration
        backend.run_pipeline("whole", poll_seconds=0)
    assert [body["name"] for body in start_execution] == ["whole"]
    assert backend.pending_stages("whole") == ()  # the execution owns it now


# ---------------------------------------------------------------- rental-kpis report


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def moto_in_thread(fake_aws_credentials, monkeypatch, crawls):
    """moto_server in a thread of this process: the notebooks' kernels reach it through
    ``AWS_ENDPOINT_URL`` like any AWS client, and the test can act as EMR on its backends."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    # State machines run for real (as in the other tests): an execution ends, never hangs.
    # (moto's config is this process's: set for this test only.)
    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)  # this process and the kernels papermill starts
    try:
        with moto_tls.patched():
            yield url
    finally:
        requests.post(f"{url}/moto-api/reset", timeout=10)
        server.stop()


def emr_writes_what_the_steps_write(monkeypatch, lake_root: Path) -> list[dict]:
    """moto as EMR: a step added to a cluster ends COMPLETED at once and leaves on S3 what the
    real step writes there (the tables and summaries of a prepared lake). Returns every
    RunJobFlow request moto received."""
    from moto.emr.models import Cluster as FakeCluster

    outputs = {
        "validate_raw": ["curated/rental_transactions"],
        "vehicle_location_metrics": [
            "processed/location_performance",
            "processed/vehicle_type_performance",
        ],
        "user_transaction_metrics": ["processed/user_metrics", "processed/daily_metrics"],
    }
    add_steps = FakeCluster.add_steps

    def run_at_once(self, steps):
        added = add_steps(self, steps)
        store = s3_backends[ACCOUNT]["aws"]
        for step in added:
            step.state = "COMPLETED"
            run_id = step.args[step.args.index("--run-id") + 1]
            for prefix in outputs[step.name]:
                for path in sorted((lake_root / prefix).rglob("*.parquet")):
                    key = path.relative_to(lake_root).as_posix()
                    store.put_object(BUCKET, key, path.read_bytes())
            written = json.loads((lake_root / "runs" / "r" / f"{step.name}.json").read_text())
            body = {**written, **summary(step.name, run_id)}
            store.put_object(BUCKET, f"runs/{run_id}/{step.name}.json", json.dumps(body).encode())
        return added

    received: list[dict] = []
    run_job_flow = ElasticMapReduceResponse.run_job_flow

    def record(self):
        received.append(json.loads(self.body))
        return run_job_flow(self)

    monkeypatch.setattr(FakeCluster, "add_steps", run_at_once)
    monkeypatch.setattr(ElasticMapReduceResponse, "run_job_flow", record)
    return received


def it_runs_the_reports_notebooks_on_the_setup_cluster_and_one_cluster_only(
    moto_in_thread, tmp_path, monkeypatch
):
    """``rental-kpis report --backend aws`` runs notebook 02, which starts the deployment's
    cluster as setup chose it, and notebook 03, which completes that run: one cluster, no
    execution of the state machine. (Notebooks 03 and 05 need Athena's real answers, which moto
    does not compute; ``report.build`` is the function the command calls.)"""
    import nbformat
    from report_lake import build_lake

    from rental_kpis.report import notebooks as report

    prepared = build_lake(tmp_path / "prepared", "r", transactions=600)
    received = emr_writes_what_the_steps_write(monkeypatch, Path(prepared.root))
    raw = tmp_path / "prepared" / "raw"
    flags = ["--instance-type", "m5.2xlarge", "--core-instances", "1", "--idle-timeout", "900"]
    assert main(["aws", "setup", *AWS, "--raw", str(raw), *flags]) == 0
    queue_athena_results(moto_in_thread, len(queries.all_queries()))

    run_id = "report-run"
    out = tmp_path / "reports"
    report.build(
        tmp_path / "unused-lake",
        out,
        raw,
        run_id=run_id,
        backend="aws",
        bucket=BUCKET,
        region=REGION,
        notebooks=("02_sprint2_emr_processing", "03_sprint2_orchestration"),
    )

    d = Deployment(BUCKET, REGION, ACCOUNT)
    chosen = ClusterSpec(
        master_instance_type="m5.2xlarge",
        core_instance_type="m5.2xlarge",
        core_instance_count=1,
        idle_timeout_seconds=900,
    )
    assert received == [emr.cluster_config(d, chosen, run_id=run_id)]
    session = boto3.Session(region_name=REGION)
    assert len(session.client("emr").list_clusters()["Clusters"]) == 1
    executions = session.client("stepfunctions").list_executions(
        stateMachineArn=d.state_machine_arn
    )["executions"]
    assert executions == []
    record = json.loads(
        session.client("s3").get_object(Bucket=BUCKET, Key=f"runs/{run_id}/run.json")["Body"].read()
    )
    assert record["status"] == "succeeded"
    assert list(record["stages"]) == [*SPARK_STAGES, "crawl", "queries"]
    shown = {
        name: "".join(
            str(o.get("data", {}).get("text/plain", ""))
            + str(o.get("data", {}).get("text/markdown", ""))
            for cell in nbformat.read(out / f"{name}.ipynb", as_version=4).cells
            for o in cell.get("outputs", [])
        )
        for name in ("02_sprint2_emr_processing", "03_sprint2_orchestration")
    }
    assert "1 x m5.2xlarge" in shown["02_sprint2_emr_processing"]  # the core nodes shown
    assert "900 s" in shown["02_sprint2_emr_processing"]
    still_to_run = f"Stages of run `{run_id}` still to run: crawl, queries"
    assert still_to_run in shown["03_sprint2_orchestration"]
    assert datetime.fromisoformat(record["finished_at"]) <= datetime.now(timezone.utc)
