"""``rental-kpis aws doctor``: a read-only preflight before anything is created or billed.

One check per line, each with the fix when it fails: credentials and account; the cluster
checked (the one setup deployed, or the default before the first setup, with the flags given
applied, as ``setup`` would deploy it); the region offers the EMR release and the instance
types; a default VPC with subnets exists (or the ``--subnet-id`` given does); EMR's managed
security groups there, if any, carry the tag the service role needs; the EC2 On-Demand vCPU
quota covers the cluster's vCPUs (else the exact value to request); the EMR clean-up
service-linked role; leftovers of an earlier setup; and what one run costs, approximately.
Nothing here writes: every call is a Describe/Get/List.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import boto3

from rental_kpis.aws import deploy, emr, iam, s3
from rental_kpis.aws.emr import ClusterSpec
from rental_kpis.aws.names import EMR_MANAGED_TAG, Deployment

OK, WARN, FAIL = "ok", "warn", "FAIL"
# Service Quotas: "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances". It counts
# the vCPUs of every running On-Demand instance of those families in the region, the cluster's
# nodes included (Amazon EC2 User Guide, "On-Demand Instance quotas"); a new account's may be
# as low as 5.
VCPU_QUOTA = ("ec2", "L-1216C47A")
VCPU_QUOTA_NAME = "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"

# On-demand USD per instance-hour in us-east-1: (EC2, EMR uplift). Approximate, as published
# on the Amazon EC2 and Amazon EMR pricing pages when this table was dated; other regions
# differ (often 5–25 % more). Per-second billing, one-minute minimum.
PRICES_DATED = "2026-11"
PRICES_USD_PER_HOUR: dict[str, tuple[float, float]] = {
    "m5.xlarge": (0.192, 0.048),
    "m5.2xlarge": (0.384, 0.096),
    "m5.4xlarge": (0.768, 0.192),
    "m6i.xlarge": (0.192, 0.048),
    "m6i.2xlarge": (0.384, 0.096),
    "r5.xlarge": (0.252, 0.063),
    "r5.2xlarge": (0.504, 0.126),
}
# A run on the sample: ~10 min provisioning and bootstrap, ~15 min of steps, termination.
RUN_HOURS = 0.5
# Glue crawler: USD 0.44 per DPU-hour, 10-minute minimum per crawl (AWS Glue pricing page).
CRAWL_USD = 0.44 * 2 * (10 / 60)


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | FAIL
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = {OK: "✔", WARN: "!", FAIL: "✘"}[self.status]
        fix = f"  → {self.fix}" if self.fix and self.status != OK else ""
        return f"{mark} {self.name:<22} {self.detail}{fix}"


def run_checks(
    deployment: Deployment, changes: Mapping[str, Any], session: boto3.Session
) -> list[Check]:
    """Every check, in the order a student would fix them, for the cluster ``chosen_cluster``
    finds; a check that cannot run (access denied, an API the region lacks) is reported as
    such, never raised."""
    spec, origin = chosen_cluster(deployment, changes, session)
    return [
        cluster_check(spec, origin),
        _guard("EMR release", lambda: release_check(spec, session)),
        _guard("instance types", lambda: instance_type_check(spec, session)),
        _guard("network", lambda: network_check(spec, session)),
        _guard("EMR security groups", lambda: security_groups_check(spec, session)),
        _guard("vCPU quota", lambda: quota_check(spec, session)),
        _guard("EMR clean-up role", lambda: cleanup_role_check(session)),
        _guard("earlier setup", lambda: leftovers_check(deployment, session)),
        cost_check(spec),
    ]


def chosen_cluster(
    deployment: Deployment, changes: Mapping[str, Any], session: boto3.Session
) -> tuple[ClusterSpec, str]:
    """The cluster ``setup`` with these flags (``ClusterSpec`` fields) would deploy, and where
    it comes from: the deployed one with the flags applied, or the default before the first
    setup (also when the deployed one cannot be read)."""
    try:
        deployed = deploy.deployed_cluster(deployment, session)
    except Exception as error:
        if not type(error).__module__.startswith(("botocore", "boto3")):
            raise
        deployed = None
    base = deployed or ClusterSpec()
    origin = "as deployed" if deployed else "the default"
    if changes:
        origin += ", with the flags given"
    return replace(base, **changes), origin


def cluster_check(spec: ClusterSpec, origin: str) -> Check:
    network = f"subnet {spec.subnet_id}" if spec.subnet_id else "default VPC"
    return Check(
        "cluster",
        OK,
        f"{spec.shape()}, {network}, idle stop {spec.idle_timeout_seconds} s ({origin})",
    )


def credentials_check(session: boto3.Session) -> Check:
    try:
        me = session.client("sts").get_caller_identity()
    except Exception as error:
        return Check(
            "credentials",
            FAIL,
            _one_line(error),
            "configure credentials: `aws configure` (or AWS_PROFILE=…), then "
            "`aws sts get-caller-identity`",
        )
    return Check("credentials", OK, f"account {me['Account']} as {me['Arn']}")


def release_check(spec: ClusterSpec, session: boto3.Session) -> Check:
    emr_client = session.client("emr")
    labels: list[str] = []
    token = None
    while True:
        page = emr_client.list_release_labels(
            Filters={"Prefix": "emr-7"}, **({"NextToken": token} if token else {})
        )
        labels += page.get("ReleaseLabels", [])
        token = page.get("NextToken")
        if not token:
            break
    if spec.release_label in labels:
        return Check("EMR release", OK, f"{spec.release_label} offered in {session.region_name}")
    return Check(
        "EMR release",
        FAIL,
        f"{spec.release_label} not offered in {session.region_name}",
        "run in a region that offers it (eu-west-1, us-east-1, …): --region",
    )


def instance_type_check(spec: ClusterSpec, session: boto3.Session) -> Check:
    wanted = sorted({spec.master_instance_type, spec.core_instance_type})
    offered = {
        o["InstanceType"]
        for o in session.client("ec2").describe_instance_type_offerings(
            LocationType="region", Filters=[{"Name": "instance-type", "Values": wanted}]
        )["InstanceTypeOfferings"]
    }
    missing = [t for t in wanted if t not in offered]
    if missing:
        return Check(
            "instance types",
            FAIL,
            f"{', '.join(missing)} not offered in {session.region_name}",
            "choose another: setup --instance-type m5.xlarge (or m6i.xlarge)",
        )
    return Check("instance types", OK, f"{', '.join(wanted)} offered")


def network_check(spec: ClusterSpec, session: boto3.Session) -> Check:
    """EMR launches into ``--subnet-id`` or, without it, a subnet of the default VPC."""
    ec2 = session.client("ec2")
    if spec.subnet_id:
        subnets = ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": [spec.subnet_id]}])
        found = subnets["Subnets"]
        if not found:
            return Check(
                "network",
                FAIL,
                f"subnet {spec.subnet_id} not found in {session.region_name}",
                "pass a subnet id of this region: aws ec2 describe-subnets",
            )
        return Check("network", OK, f"subnet {spec.subnet_id} in {found[0]['VpcId']}")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        return Check(
            "network",
            FAIL,
            f"no default VPC in {session.region_name}",
            "create one (`aws ec2 create-default-vpc`) or pass --subnet-id subnet-… of a "
            "subnet with a route to the internet",
        )
    vpc = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    if not subnets:
        return Check(
            "network",
            FAIL,
            f"default VPC {vpc} has no subnet",
            "create default subnets (`aws ec2 create-default-subnet --availability-zone …`) "
            "or pass --subnet-id",
        )
    return Check("network", OK, f"default VPC {vpc} with {len(subnets)} subnet(s)")


# The EMR-managed security groups EMR creates in a VPC the first time, and reuses afterwards.
EMR_MANAGED_GROUPS = ("ElasticMapReduce-master", "ElasticMapReduce-slave")


def security_groups_check(spec: ClusterSpec, session: boto3.Session) -> Check:
    """EMR's managed security groups, when an earlier cluster made them, must carry the tag the
    service role's security-group rights are scoped to. EMR tags the groups it creates now, but
    not groups made before its v2 managed policies (EMR Management Guide, "Amazon EMR managed
    policies", "Automatically-tagged security groups"): such groups must be tagged by hand, or
    EMR cannot update their rules with this project's service role."""
    ec2 = session.client("ec2")
    if spec.subnet_id:
        subnets = ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": [spec.subnet_id]}])
        vpcs = [s["VpcId"] for s in subnets["Subnets"]]
    else:
        found = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
        vpcs = [v["VpcId"] for v in found]
    if not vpcs:
        return Check("EMR security groups", WARN, "no VPC to look in (see network)")
    groups = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": vpcs[:1]},
            {"Name": "group-name", "Values": list(EMR_MANAGED_GROUPS)},
        ]
    )["SecurityGroups"]
    tag = {"Key": EMR_MANAGED_TAG[0], "Value": EMR_MANAGED_TAG[1]}
    untagged = sorted(g["GroupId"] for g in groups if tag not in g.get("Tags", []))
    if untagged:
        return Check(
            "EMR security groups",
            WARN,
            f"{', '.join(untagged)} in {vpcs[0]} lack the tag {tag['Key']}=true",
            f"aws ec2 create-tags --resources {' '.join(untagged)} "
            f"--tags Key={tag['Key']},Value=true",
        )
    if not groups:
        return Check("EMR security groups", OK, f"none yet in {vpcs[0]}: EMR creates them tagged")
    return Check("EMR security groups", OK, f"{len(groups)} in {vpcs[0]}, tagged for EMR")


def instance_vcpus(spec: ClusterSpec, session: boto3.Session) -> dict[str, int]:
    """vCPUs of each instance type of the cluster, as EC2 reports them (DescribeInstanceTypes,
    ``VCpuInfo.DefaultVCpus``): what the On-Demand quota counts per running instance."""
    types = sorted(set(spec.instance_types))
    info = session.client("ec2").describe_instance_types(InstanceTypes=types)["InstanceTypes"]
    return {t["InstanceType"]: t["VCpuInfo"]["DefaultVCpus"] for t in info}


def vcpus_needed(spec: ClusterSpec, vcpus: Mapping[str, int]) -> int:
    """Pure: the vCPUs of every node of the cluster (vCPUs per instance type × count)."""
    return sum(vcpus[kind] for kind in spec.instance_types)


def quota_verdict(
    spec: ClusterSpec, vcpus: Mapping[str, int], quota: float | None, region: str
) -> Check:
    """Pure: does the On-Demand Standard vCPU quota cover the cluster? When it does not, the
    fix names the exact value to request (the cluster's vCPUs) and, if one exists, the largest
    smaller shape that fits the quota as it is."""
    needed = vcpus_needed(spec, vcpus)
    each = ", ".join(f"{kind}: {vcpus[kind]} vCPUs" for kind in sorted(set(spec.instance_types)))
    what = f"{needed} vCPUs for {spec.shape()} ({each})"
    request = (
        f"request {needed}: aws service-quotas request-service-quota-increase --service-code "
        f"{VCPU_QUOTA[0]} --quota-code {VCPU_QUOTA[1]} --desired-value {needed} --region {region} "
        f"(Service Quotas console: '{VCPU_QUOTA_NAME}'; add the vCPUs of any other On-Demand "
        "instance you keep running there)"
    )
    if quota is None:
        return Check("vCPU quota", WARN, f"quota unreadable; the cluster needs {what}", request)
    if quota >= needed:
        return Check("vCPU quota", OK, f"{quota:.0f} vCPUs ≥ {what}")
    smaller = [
        core
        for core in range(spec.core_instance_count)
        if vcpus_needed(replace(spec, core_instance_count=core), vcpus) <= quota
    ]
    if smaller:
        fits = replace(spec, core_instance_count=smaller[-1])
        request += (
            f", or run a cluster that fits: --core-instances {smaller[-1]} "
            f"({vcpus_needed(fits, vcpus)} vCPUs)"
        )
    return Check("vCPU quota", FAIL, f"{quota:.0f} vCPUs < {what}", request)


def quota_check(spec: ClusterSpec, session: boto3.Session) -> Check:
    vcpus = instance_vcpus(spec, session)
    quotas = session.client("service-quotas")
    try:
        value = quotas.get_service_quota(ServiceCode=VCPU_QUOTA[0], QuotaCode=VCPU_QUOTA[1])[
            "Quota"
        ]["Value"]
    except quotas.exceptions.ClientError:
        value = None
    return quota_verdict(spec, vcpus, value, session.region_name)


def cleanup_role_check(session: boto3.Session) -> Check:
    if iam.cleanup_role_exists(session):
        return Check("EMR clean-up role", OK, f"{iam.CLEANUP_ROLE} exists")
    return Check(
        "EMR clean-up role",
        WARN,
        f"{iam.CLEANUP_ROLE} not created yet",
        "setup creates it (needs iam:CreateServiceLinkedRole for elasticmapreduce.amazonaws.com)",
    )


def leftovers_check(deployment: Deployment, session: boto3.Session) -> Check:
    """What an earlier setup of this bucket left: running clusters bill, the rest is reused."""
    clusters = emr.project_clusters(deployment, session)
    if clusters:
        return Check(
            "earlier setup",
            FAIL,
            f"cluster(s) {', '.join(clusters)} running and billing",
            f"rental-kpis aws teardown --bucket {deployment.bucket} --region {deployment.region}",
        )
    found = []
    where = s3.bucket_region(deployment, session)
    if where is not None:
        found.append(f"bucket {deployment.bucket} ({where})")
    iam_client = session.client("iam")
    for role in deployment.roles.values():
        try:
            iam_client.get_role(RoleName=role)
            found.append(f"role {role}")
        except iam_client.exceptions.NoSuchEntityException:
            pass
    if not found:
        return Check("earlier setup", OK, "nothing of this deployment exists yet")
    if where is not None and where != deployment.region:
        return Check(
            "earlier setup",
            FAIL,
            f"bucket {deployment.bucket} is in {where}",
            f"use --region {where}, or another bucket name",
        )
    return Check(
        "earlier setup",
        OK,
        f"found {len(found)} resource(s) ({found[0]}, …): setup reuses them, teardown removes them",
    )


def cost_check(spec: ClusterSpec) -> Check:
    """Instance-hours × (EC2 on-demand + EMR) from the dated table, plus one crawl."""
    instances = spec.instance_types
    missing = sorted({t for t in instances if t not in PRICES_USD_PER_HOUR})
    if missing:
        return Check(
            "cost of one run",
            WARN,
            f"no price for {', '.join(missing)} in the table (dated {PRICES_DATED})",
            "see the Amazon EMR pricing page",
        )
    per_hour = sum(sum(PRICES_USD_PER_HOUR[t]) for t in instances)
    total = per_hour * RUN_HOURS + CRAWL_USD
    return Check(
        "cost of one run",
        OK,
        f"≈ USD {total:.2f} (approximate: {spec.shape()} for ~{RUN_HOURS * 60:.0f} min at "
        f"USD {per_hour:.3f}/h EC2+EMR, us-east-1 prices of {PRICES_DATED}, + one crawl); an "
        f"idle cluster stops after {spec.idle_timeout_seconds // 60} min",
    )


def _guard(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as error:
        if not type(error).__module__.startswith(("botocore", "boto3")):
            raise
        return Check(name, WARN, f"could not check: {_one_line(error)}", "see docs/aws.md §0")


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
