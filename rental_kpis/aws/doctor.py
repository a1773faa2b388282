"""``rental-kpis aws doctor``: a read-only preflight before anything is created or billed.

One check per line, each with the fix when it fails: credentials and account; the cluster
checked (the one setup deployed, or the default before the first setup, with the flags given
applied, as ``setup`` would deploy it); the region offers the EMR release and the instance
types; a default VPC with subnets exists (or the ``--subnet-id`` given does); EMR's managed
security groups there, if any, carry the tag the service role needs; each EC2 On-Demand vCPU
quota the cluster's instance families count against has room for its vCPUs beside those already
running in the region (else the exact value to request); the EMR clean-up
service-linked role; leftovers of an earlier setup; and what one run costs, approximately.
Nothing here writes: every call is a Describe/Get/List.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from itertools import takewhile
from typing import Any

import boto3

from rental_kpis.aws import deploy, emr, iam, s3
from rental_kpis.aws.emr import ClusterSpec
from rental_kpis.aws.names import EMR_MANAGED_TAG, Deployment

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class VcpuQuota:
    """One EC2 "Running On-Demand … instances" quota of Service Quotas (service code ``ec2``):
    the vCPUs of every running (or pending) On-Demand instance of its ``families`` in the
    region, whoever started them, the cluster's nodes included."""

    code: str
    name: str  # as Service Quotas names it
    families: frozenset[str]

    @property
    def label(self) -> str:
        """The quota's name without "Running On-Demand " and " instances"."""
        return self.name.removeprefix("Running On-Demand ").removesuffix(" instances")


# Amazon EC2 User Guide, "On-Demand Instance quotas": one vCPU quota per group of instance
# families; a new account's Standard quota may be as low as 5, the others are often 0. A family
# is the letters of an instance type's name before its generation digit (``family_of``).
VCPU_QUOTAS: tuple[VcpuQuota, ...] = (
    VcpuQuota(
        "L-1216C47A",
        "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
        frozenset("acdhimrtz"),
    ),
    VcpuQuota("L-DB2E81BA", "Running On-Demand G and VT instances", frozenset({"g", "vt"})),
    VcpuQuota("L-417A185B", "Running On-Demand P instances", frozenset({"p"})),
    VcpuQuota("L-74FC7D96", "Running On-Demand F instances", frozenset({"f"})),
    VcpuQuota("L-7295265B", "Running On-Demand X instances", frozenset({"x"})),
    VcpuQuota("L-1945791B", "Running On-Demand Inf instances", frozenset({"inf"})),
    VcpuQuota("L-6E869C2A", "Running On-Demand DL instances", frozenset({"dl"})),
    VcpuQuota("L-2C3B7624", "Running On-Demand Trn instances", frozenset({"trn"})),
    VcpuQuota("L-43DA4232", "Running On-Demand High Memory instances", frozenset({"u"})),
)
# Instances in these states count against a "Running On-Demand" quota (DescribeInstances'
# ``instance-state-name`` filter); Spot Instances (``InstanceLifecycle`` "spot") count against
# the Spot quotas instead.
COUNTED_STATES = ("pending", "running")

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
        *_guard_many("vCPU quota", lambda: quota_check(spec, session)),
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


def family_of(instance_type: str) -> str:
    """Pure: the instance family, the letters before the generation digit (``m5.xlarge`` → m,
    ``g4dn.xlarge`` → g, ``inf2.xlarge`` → inf, ``u-6tb1.metal`` → u)."""
    return "".join(takewhile(str.isalpha, instance_type))


def quota_of(instance_type: str) -> VcpuQuota | None:
    """Pure: the On-Demand vCPU quota the instance type counts against, None for a family
    ``VCPU_QUOTAS`` does not list (its quota cannot be checked)."""
    family = family_of(instance_type)
    return next((q for q in VCPU_QUOTAS if family in q.families), None)


def instance_vcpus(
    spec: ClusterSpec, session: boto3.Session, more: Iterable[str] = ()
) -> dict[str, int]:
    """vCPUs of each instance type of the cluster and of ``more``, as EC2 reports them
    (DescribeInstanceTypes, ``VCpuInfo.DefaultVCpus``): what an On-Demand quota counts per
    running instance."""
    types = sorted(set(spec.instance_types) | set(more))
    ec2 = session.client("ec2")
    found: dict[str, int] = {}
    for first in range(0, len(types), 100):  # at most 100 types per request
        info = ec2.describe_instance_types(InstanceTypes=types[first : first + 100])
        found |= {t["InstanceType"]: t["VCpuInfo"]["DefaultVCpus"] for t in info["InstanceTypes"]}
    return found


def running_on_demand(session: boto3.Session) -> list[str]:
    """The instance type of every pending or running On-Demand instance in the region
    (DescribeInstances; Spot Instances left out by their ``InstanceLifecycle``)."""
    pages = (
        session.client("ec2")
        .get_paginator("describe_instances")
        .paginate(Filters=[{"Name": "instance-state-name", "Values": list(COUNTED_STATES)}])
    )
    return [
        instance["InstanceType"]
        for page in pages
        for reservation in page["Reservations"]
        for instance in reservation["Instances"]
        if instance.get("InstanceLifecycle") != "spot"
    ]


def vcpus_in_use(running: Iterable[str], vcpus: Mapping[str, int]) -> dict[str, int]:
    """Pure: vCPUs of the ``running`` instances (their types) per quota code, for the quotas
    ``VCPU_QUOTAS`` lists (a type without vCPUs in ``vcpus`` counts for none)."""
    used: dict[str, int] = {}
    for kind in running:
        quota = quota_of(kind)
        if quota is not None and kind in vcpus:
            used[quota.code] = used.get(quota.code, 0) + vcpus[kind]
    return used


def vcpus_needed(
    spec: ClusterSpec, vcpus: Mapping[str, int], quota: VcpuQuota | None = None
) -> int:
    """Pure: the vCPUs of every node of the cluster (vCPUs per instance type × count), or of
    the nodes that count against ``quota``."""
    return sum(
        vcpus[kind] for kind in spec.instance_types if quota is None or quota_of(kind) == quota
    )


def quota_verdict(
    spec: ClusterSpec,
    vcpus: Mapping[str, int],
    quotas: Mapping[str, float | None],
    in_use: Mapping[str, int] | None,
    region: str,
) -> list[Check]:
    """Pure: one "vCPU quota" check per quota the cluster's nodes count against, in the order of
    ``VCPU_QUOTAS``, then one for the nodes of a family no listed quota covers.

    ``quotas`` holds each needed quota's value by code (None: unreadable); ``in_use`` the vCPUs
    of the On-Demand instances already running in the region by code (None: not counted, e.g.
    DescribeInstances denied; a missing code: 0). A quota is ok when its value minus the vCPUs in
    use covers the cluster's nodes of its families; else the check fails and its fix names the
    exact value to request (in use + needed) and, if one exists, the largest smaller shape that
    fits what is free. An unreadable quota, or uncounted use of a quota that would otherwise be
    enough, is a warning; a node of an unknown family is a warning that it cannot be checked."""
    checks = []
    groups = {quota_of(kind) for kind in spec.instance_types}
    for quota in (q for q in VCPU_QUOTAS if q in groups):
        checks.append(
            _one_quota_verdict(
                spec,
                vcpus,
                quota,
                quotas.get(quota.code),
                None if in_use is None else in_use.get(quota.code, 0),
                region,
            )
        )
    unknown = sorted({kind for kind in spec.instance_types if quota_of(kind) is None})
    if unknown:
        families = ", ".join(sorted({family_of(kind) for kind in unknown}))
        checks.append(
            Check(
                "vCPU quota",
                WARN,
                f"cannot be checked for {', '.join(unknown)}: no known On-Demand vCPU quota for "
                f"family {families}",
                "find its 'Running On-Demand … instances' quota in the Service Quotas console "
                "(Amazon EC2 User Guide, 'On-Demand Instance quotas')",
            )
        )
    return checks


def _one_quota_verdict(
    spec: ClusterSpec,
    vcpus: Mapping[str, int],
    quota: VcpuQuota,
    value: float | None,
    used: int | None,
    region: str,
) -> Check:
    """One quota: ``value`` None when unreadable, ``used`` None when not counted."""
    needed = vcpus_needed(spec, vcpus, quota)
    kinds = sorted({kind for kind in spec.instance_types if quota_of(kind) == quota})
    mixed = any(quota_of(kind) != quota for kind in spec.instance_types)
    if mixed:  # the nodes of this quota only
        nodes = " + ".join(
            f"{spec.instance_types.count(kind)} × {kind} ({vcpus[kind]} vCPUs)" for kind in kinds
        )
    else:
        each = ", ".join(f"{kind}: {vcpus[kind]} vCPUs" for kind in kinds)
        nodes = f"{spec.shape()} ({each})"
    what = f"{needed} vCPUs for {nodes}"
    name = f"{quota.label} ({quota.code})"
    desired = needed + (used or 0)
    request = (
        f"request {desired}: aws service-quotas request-service-quota-increase --service-code "
        f"ec2 --quota-code {quota.code} --desired-value {desired} --region {region} "
        f"(Service Quotas console: '{quota.name}')"
    )
    if value is None:
        in_use = "" if used is None else f", {used} vCPUs of it in use"
        return Check(
            "vCPU quota", WARN, f"{name} unreadable; the cluster needs {what}{in_use}", request
        )
    if used is None:
        if value >= needed:
            return Check(
                "vCPU quota",
                WARN,
                f"{name}: {needed} vCPUs needed for {nodes}, {value:.0f} in all, in use "
                "unknown (DescribeInstances failed)",
                "allow ec2:DescribeInstances, or check the instances running in the region: "
                f"{value:.0f} − their vCPUs must be ≥ {needed}",
            )
        return Check(
            "vCPU quota",
            FAIL,
            f"{name}: {needed} vCPUs needed for {nodes}, {value:.0f} in all",
            request,
        )
    free = value - used
    detail = (
        f"{name}: {needed} vCPUs needed for {nodes}, {value:.0f} − {used} in use = {free:.0f} free"
    )
    if free >= needed:
        return Check("vCPU quota", OK, detail)
    if used and value >= needed:  # stopping some of them would do
        request += (
            f", or stop On-Demand instances of at least {needed - free:.0f} of the {used} vCPUs "
            "in use there"
        )
    smaller = [
        core
        for core in range(spec.core_instance_count)
        if vcpus_needed(replace(spec, core_instance_count=core), vcpus, quota) <= free
    ]
    if smaller:
        fits = replace(spec, core_instance_count=smaller[-1])
        request += (
            f", or run a cluster that fits: --core-instances {smaller[-1]} "
            f"({vcpus_needed(fits, vcpus, quota)} vCPUs{' of this quota' if mixed else ''})"
        )
    return Check("vCPU quota", FAIL, detail, request)


def quota_check(spec: ClusterSpec, session: boto3.Session) -> list[Check]:
    """``quota_verdict`` for the cluster, with the value of each quota its nodes count against
    (Service Quotas GetServiceQuota; None when unreadable) and the vCPUs of the On-Demand
    instances running in the region (DescribeInstances, DescribeInstanceTypes; not counted when
    DescribeInstances fails)."""
    quotas_client = session.client("service-quotas")
    needed = [q for q in VCPU_QUOTAS if any(quota_of(k) == q for k in spec.instance_types)]
    values: dict[str, float | None] = {}
    for quota in needed:
        try:
            values[quota.code] = quotas_client.get_service_quota(
                ServiceCode="ec2", QuotaCode=quota.code
            )["Quota"]["Value"]
        except quotas_client.exceptions.ClientError:
            values[quota.code] = None
    ec2 = session.client("ec2")
    try:
        running = [kind for kind in running_on_demand(session) if quota_of(kind) in needed]
    except ec2.exceptions.ClientError:
        running = None
    vcpus = instance_vcpus(spec, session, running or ())
    in_use = None if running is None else vcpus_in_use(running, vcpus)
    return quota_verdict(spec, vcpus, values, in_use, session.region_name)


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
    [checked] = _guard_many(name, lambda: [check()])
    return checked


def _guard_many(name: str, checks: Callable[[], list[Check]]) -> list[Check]:
    """The checks, or one warning that they could not run when AWS refused a call."""
    try:
        return checks()
    except Exception as error:
        if not type(error).__module__.startswith(("botocore", "boto3")):
            raise
        return [Check(name, WARN, f"could not check: {_one_line(error)}", "see docs/aws.md §0")]


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
