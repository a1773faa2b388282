"""The cluster a deployment starts, against moto: the default fits a new account's On-Demand
vCPU quota, ``aws doctor`` computes what a shape needs and what to request, and a cluster flag
no cluster can have is one line."""

from __future__ import annotations

import boto3
import moto_tls
import pytest
from moto import mock_aws
from moto.servicequotas.models import ServiceQuotasBackend

from rental_kpis.aws import emr
from rental_kpis.aws.emr import ClusterSpec
from rental_kpis.aws.names import Deployment
from rental_kpis.cli import main
from rental_kpis.layout import DATASETS
from rental_kpis.spark.schemas import RAW_COLUMNS

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


# ---------------------------------------------------------------- cluster flags


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
