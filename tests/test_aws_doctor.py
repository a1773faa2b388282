"""``aws doctor``'s vCPU quota verdicts, against moto: each instance family counts against its
own "Running On-Demand … instances" quota (Amazon EC2 User Guide, "On-Demand Instance quotas"),
the On-Demand instances already running in the region use part of it, and a family without a
known quota is said to be unchecked, never "ok"."""

from __future__ import annotations

import boto3
import moto_tls
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.servicequotas.models import ServiceQuotasBackend

from rental_kpis.aws import deploy, doctor, emr
from rental_kpis.aws.emr import ClusterSpec
from rental_kpis.cli import main
from rental_kpis.layout import DATASETS
from rental_kpis.spark.schemas import RAW_COLUMNS

REGION = "eu-west-1"
AWS = ["--bucket", "rental-kpis-doctor-test", "--region", REGION]
STANDARD, G_AND_VT, P = "L-1216C47A", "L-DB2E81BA", "L-417A185B"
BUCKET = AWS[1]


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


@pytest.fixture
def aws(fake_aws_credentials, monkeypatch):
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        monkeypatch.setattr(boto3, "Session", lambda *a, **k: session)
        yield session


def ec2_quotas(monkeypatch, values: dict[str, float]) -> list[str]:
    """Give moto's Service Quotas these EC2 quotas (code → vCPUs; moto carries VPC's only).
    Returns the quota codes asked for, in order."""
    found = ServiceQuotasBackend.get_service_quota
    asked: list[str] = []

    def get_service_quota(self, service_code: str, quota_code: str):
        if service_code == "ec2":
            asked.append(quota_code)
        if service_code == "ec2" and quota_code in values:
            return {
                "ServiceCode": "ec2",
                "QuotaCode": quota_code,
                "QuotaName": quota_code,
                "Value": values[quota_code],
                "Unit": "None",
                "Adjustable": True,
                "GlobalQuota": False,
            }
        return found(self, service_code, quota_code)

    monkeypatch.setattr(ServiceQuotasBackend, "get_service_quota", get_service_quota)
    return asked


def launch(session: boto3.Session, instance_type: str, count: int = 1, **extra) -> list[str]:
    ec2 = session.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    reply = ec2.run_instances(
        ImageId=image, MinCount=count, MaxCount=count, InstanceType=instance_type, **extra
    )
    return [i["InstanceId"] for i in reply["Instances"]]


def quota_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line[2:24].strip() == "vCPU quota"]


@pytest.mark.parametrize(
    ("instance_type", "family", "code"),
    [
        ("m5.xlarge", "m", STANDARD),
        ("t3a.large", "t", STANDARD),
        ("z1d.large", "z", STANDARD),
        ("g4dn.xlarge", "g", G_AND_VT),
        ("vt1.3xlarge", "vt", G_AND_VT),
        ("p3.2xlarge", "p", P),
        ("f2.6xlarge", "f", "L-74FC7D96"),
        ("x2iedn.xlarge", "x", "L-7295265B"),
        ("inf2.xlarge", "inf", "L-1945791B"),
        ("dl1.24xlarge", "dl", "L-6E869C2A"),
        ("trn1.2xlarge", "trn", "L-2C3B7624"),
        ("u-6tb1.metal", "u", "L-43DA4232"),
        ("u7i-12tb.224xlarge", "u", "L-43DA4232"),
        ("mac2.metal", "mac", None),
        ("hpc7g.4xlarge", "hpc", None),
    ],
)
def it_knows_the_quota_each_family_counts_against(instance_type, family, code):
    assert doctor.family_of(instance_type) == family
    quota = doctor.quota_of(instance_type)
    assert (quota.code if quota else None) == code


def it_does_not_measure_gpu_nodes_against_the_standard_quota():
    """The review's case: 64 Standard vCPUs say nothing of the G and P quotas (0 here)."""
    spec = ClusterSpec(
        master_instance_type="g4dn.xlarge", core_instance_type="p3.2xlarge", core_instance_count=1
    )
    vcpus = {"g4dn.xlarge": 4, "p3.2xlarge": 8}
    checks = doctor.quota_verdict(spec, vcpus, {STANDARD: 64, G_AND_VT: 0, P: 0}, {}, REGION)
    assert [c.status for c in checks] == [doctor.FAIL, doctor.FAIL]
    g, p = (c.line() for c in checks)
    assert "G and VT (L-DB2E81BA): 4 vCPUs needed for 1 × g4dn.xlarge (4 vCPUs), 0 − 0 in use" in g
    assert "--quota-code L-DB2E81BA --desired-value 4 " in g
    assert "'Running On-Demand G and VT instances'" in g
    assert "P (L-417A185B): 8 vCPUs needed for 1 × p3.2xlarge (8 vCPUs), 0 − 0 in use" in p
    assert "--quota-code L-417A185B --desired-value 8 " in p
    assert not any("L-1216C47A" in c.line() for c in checks)


def it_reads_each_quota_the_cluster_needs_and_fails_doctor_on_a_zero_one(aws, monkeypatch, capsys):
    asked = ec2_quotas(monkeypatch, {STANDARD: 64, G_AND_VT: 0, P: 0})
    assert main(["aws", "doctor", *AWS, "--instance-type", "g4dn.xlarge"]) == 1
    [line] = quota_lines(capsys.readouterr().out)
    assert line.startswith("✘ vCPU quota             G and VT (L-DB2E81BA): 4 vCPUs needed for ")
    assert "0 − 0 in use = 0 free  → request 4: " in line
    assert asked == [G_AND_VT]

    asked.clear()
    spec = ClusterSpec(
        master_instance_type="m5.xlarge", core_instance_type="p5.4xlarge", core_instance_count=1
    )
    standard, p = doctor.quota_check(spec, aws)
    assert asked == [STANDARD, P]
    assert standard.status == doctor.OK
    assert "Standard (A, C, D, H, I, M, R, T, Z) (L-1216C47A): 4 vCPUs needed" in standard.detail
    assert p.status == doctor.FAIL and "16 vCPUs needed for 1 × p5.4xlarge (16 vCPUs)" in p.detail
    assert p.fix.endswith("or run a cluster that fits: --core-instances 0 (0 vCPUs of this quota)")


def it_counts_the_on_demand_vcpus_already_running_in_the_region(aws, monkeypatch, capsys):
    """Running or pending On-Demand instances use the quota; Spot, stopped and other families'
    instances do not use this one."""
    ec2_quotas(monkeypatch, {STANDARD: 5.0, G_AND_VT: 8.0})
    [running] = launch(aws, "m5.xlarge")
    launch(aws, "m5.2xlarge", InstanceMarketOptions={"MarketType": "spot"})
    [stopped] = launch(aws, "c5.2xlarge")
    aws.client("ec2").stop_instances(InstanceIds=[stopped])
    launch(aws, "g4dn.xlarge")

    assert main(["aws", "doctor", *AWS]) == 1
    [line] = quota_lines(capsys.readouterr().out)
    assert line.startswith(
        "✘ vCPU quota             Standard (A, C, D, H, I, M, R, T, Z) (L-1216C47A): 4 vCPUs "
        "needed for 1 × m5.xlarge (primary only) (m5.xlarge: 4 vCPUs), 5 − 4 in use = 1 free"
    )
    assert "→ request 8: " in line and "--desired-value 8 " in line
    assert "or stop On-Demand instances of at least 3 of the 4 vCPUs in use there" in line

    # The G quota: 8 − 4 (the g4dn.xlarge running) leaves room for one more, not two.
    [g] = doctor.quota_check(ClusterSpec(master_instance_type="g4dn.xlarge"), aws)
    assert (g.status, g.detail.split(", ")[-1]) == (doctor.OK, "8 − 4 in use = 4 free")
    [g] = doctor.quota_check(
        ClusterSpec(
            master_instance_type="g4dn.xlarge",
            core_instance_type="g4dn.xlarge",
            core_instance_count=1,
        ),
        aws,
    )
    assert g.status == doctor.FAIL and "--desired-value 12 " in g.fix
    assert "or stop On-Demand instances of at least 4 of the 4 vCPUs in use there" in g.fix

    aws.client("ec2").terminate_instances(InstanceIds=[running])
    assert main(["aws", "doctor", *AWS]) == 0
    [line] = quota_lines(capsys.readouterr().out)
    assert line.startswith("✔ vCPU quota ") and line.endswith("5 − 0 in use = 5 free")


def it_warns_when_it_cannot_count_the_vcpus_in_use(aws, monkeypatch):
    """DescribeInstances denied: a quota above the need cannot be called enough."""
    ec2_quotas(monkeypatch, {STANDARD: 5.0})

    def denied(**_):
        raise ClientError(
            {"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "DescribeInstances"
        )

    aws.events.register("before-call.ec2.DescribeInstances", denied)
    [check] = doctor.quota_check(ClusterSpec(), aws)
    assert check.status == doctor.WARN
    assert "5 in all, in use unknown (DescribeInstances failed)" in check.detail
    assert "allow ec2:DescribeInstances" in check.fix
    [check] = doctor.quota_check(ClusterSpec(core_instance_count=1), aws)  # 8 > 5 regardless
    assert check.status == doctor.FAIL and "--desired-value 8 " in check.fix


def it_says_a_family_without_a_known_quota_cannot_be_checked():
    spec = ClusterSpec(
        master_instance_type="m5.xlarge", core_instance_type="mac2.metal", core_instance_count=1
    )
    vcpus = {"m5.xlarge": 4, "mac2.metal": 12}
    standard, unknown = doctor.quota_verdict(spec, vcpus, {STANDARD: 64}, {}, REGION)
    assert standard.status == doctor.OK
    assert "4 vCPUs needed for 1 × m5.xlarge (4 vCPUs), 64 − 0 in use = 64 free" in standard.detail
    assert unknown.status == doctor.WARN
    assert unknown.detail.startswith("cannot be checked for mac2.metal: ")
    assert "family mac" in unknown.detail


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
