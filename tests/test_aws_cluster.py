"""The deployment's one cluster, against moto: every cluster the project creates is built from
the shape ``rental-kpis aws setup`` recorded (the state machine's and the notebooks'), the
default shape fits a new account's On-Demand vCPU quota, ``aws doctor`` computes what a shape
needs and what to request, and a cluster flag no cluster can have is one line."""

from __future__ import annotations

import json

import boto3
import moto_tls
import pytest
from moto import mock_aws
from moto.emr.models import emr_backends
from moto.servicequotas.models import ServiceQuotasBackend

from rental_kpis.aws import deploy, emr
from rental_kpis.aws.emr import ClusterSpec
from rental_kpis.aws.names import Deployment
from rental_kpis.cli import main
from rental_kpis.errors import UsageError
from rental_kpis.layout import DATASETS
from rental_kpis.spark.schemas import RAW_COLUMNS
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
    assert run_job_flow == [wanted]
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
    assert json.loads(create["parameters"]) == wanted
    assert (
        f"cluster       1 primary + 1 core m5.2xlarge, emr-7.13.0, in subnet {subnet}, "
        "stops after 900 s idle"
    ) in capsys.readouterr().out


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

    emr.terminate_cluster(d, cluster, session=aws)

    ec2_quota(monkeypatch, 5.0)
    assert main(["aws", "doctor", *AWS]) == 0
    out = capsys.readouterr().out
    assert "✔ vCPU quota             5 vCPUs ≥ 4 vCPUs for 1 × m5.xlarge (primary only) " in out
    assert "(m5.xlarge: 4 vCPUs)" in out


def it_computes_what_a_shape_needs_and_the_exact_quota_to_request(aws, monkeypatch, capsys):
    ec2_quota(monkeypatch, 5.0)
    doctor = ["aws", "doctor", *AWS]

    assert main([*doctor, "--core-instances", "1"]) == 1
    [line] = [x for x in capsys.readouterr().out.splitlines() if "vCPU quota" in x]
    assert line.startswith("✘ vCPU quota             5 vCPUs < 8 vCPUs for 1 primary + 1 core ")
    assert (
        "→ request 8: aws service-quotas request-service-quota-increase --service-code ec2 "
        "--quota-code L-1216C47A --desired-value 8 --region eu-west-1"
    ) in line
    assert line.endswith("or run a cluster that fits: --core-instances 0 (4 vCPUs)")

    assert main([*doctor, "--instance-type", "m5.2xlarge"]) == 1
    [line] = [x for x in capsys.readouterr().out.splitlines() if "vCPU quota" in x]
    assert "5 vCPUs < 8 vCPUs for 1 × m5.2xlarge (primary only) (m5.2xlarge: 8 vCPUs)" in line
    assert "--desired-value 8 " in line and "--core-instances" not in line  # nothing smaller

    ec2_quota(monkeypatch, 32.0)
    assert main([*doctor, "--core-instances", "3", "--instance-type", "m5.2xlarge"]) == 0
    out = capsys.readouterr().out
    assert "✔ vCPU quota             32 vCPUs ≥ 32 vCPUs for 1 primary + 3 core m5.2xlarge" in out
    assert "✔ cost of one run        ≈ USD 1.11 (approximate: 1 primary + 3 core m5.2xlarge" in out


def it_checks_the_deployed_cluster_unless_told_otherwise(aws, raw, monkeypatch, capsys):
    assert main(["aws", "setup", *AWS, "--raw", str(raw), "--core-instances", "2"]) == 0
    ec2_quota(monkeypatch, 5.0)
    capsys.readouterr()
    assert main(["aws", "doctor", *AWS]) == 1
    out = capsys.readouterr().out
    assert "1 primary + 2 core m5.xlarge, default VPC, idle stop 3600 s (as deployed)" in out
    assert "5 vCPUs < 12 vCPUs for 1 primary + 2 core m5.xlarge" in out
    assert "--desired-value 12 " in out and "--core-instances 0 (4 vCPUs)" in out
    assert main(["aws", "doctor", *AWS, "--core-instances", "0"]) == 0
    assert "(as deployed, with the flags given)" in capsys.readouterr().out


# ---------------------------------------------------------------- notebook 04 on AWS


# ---------------------------------------------------------------- rental-kpis report
