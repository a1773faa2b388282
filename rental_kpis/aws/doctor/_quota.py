"""The EC2 On-Demand vCPU quotas: each one the cluster's nodes count against must have room
for them beside the instances already running in the region."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from itertools import takewhile

import boto3

from rental_kpis.aws.doctor._check import FAIL, OK, WARN, Check
from rental_kpis.aws.emr import ClusterSpec


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


def family_of(instance_type: str) -> str:
    """The instance family: the letters before the generation digit (``g4dn.xlarge`` → g)."""
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
    nodes = _nodes_of(spec, vcpus, quota)
    name = f"{quota.label} ({quota.code})"
    request = _increase(quota, needed + (used or 0), region)
    if value is None:
        in_use = "" if used is None else f", {used} vCPUs of it in use"
        detail = f"{name} unreadable; the cluster needs {needed} vCPUs for {nodes}{in_use}"
        return Check("vCPU quota", WARN, detail, request)
    if used is None:
        detail = f"{name}: {needed} vCPUs needed for {nodes}, {value:.0f} in all"
        if value < needed:
            return Check("vCPU quota", FAIL, detail, request)
        return Check(
            "vCPU quota",
            WARN,
            f"{detail}, in use unknown (DescribeInstances failed)",
            "allow ec2:DescribeInstances, or check the instances running in the region: "
            f"{value:.0f} − their vCPUs must be ≥ {needed}",
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
    return Check("vCPU quota", FAIL, detail, request + _smaller_cluster(spec, vcpus, quota, free))


def _nodes_of(spec: ClusterSpec, vcpus: Mapping[str, int], quota: VcpuQuota) -> str:
    """The cluster's nodes that count against ``quota``, with their vCPUs, in words."""
    kinds = sorted({kind for kind in spec.instance_types if quota_of(kind) == quota})
    if _mixed(spec, quota):
        return " + ".join(
            f"{spec.instance_types.count(kind)} × {kind} ({vcpus[kind]} vCPUs)" for kind in kinds
        )
    each = ", ".join(f"{kind}: {vcpus[kind]} vCPUs" for kind in kinds)
    return f"{spec.shape()} ({each})"


def _mixed(spec: ClusterSpec, quota: VcpuQuota) -> bool:
    """True when some of the cluster's nodes count against another quota."""
    return any(quota_of(kind) != quota for kind in spec.instance_types)


def _increase(quota: VcpuQuota, desired: int, region: str) -> str:
    """The command that requests ``quota`` at ``desired`` vCPUs."""
    return (
        f"request {desired}: aws service-quotas request-service-quota-increase --service-code "
        f"ec2 --quota-code {quota.code} --desired-value {desired} --region {region} "
        f"(Service Quotas console: '{quota.name}')"
    )


def _smaller_cluster(
    spec: ClusterSpec, vcpus: Mapping[str, int], quota: VcpuQuota, free: float
) -> str:
    """The fix of running fewer core nodes, when some number of them fits in ``free``."""
    smaller = [
        core
        for core in range(spec.core_instance_count)
        if vcpus_needed(replace(spec, core_instance_count=core), vcpus, quota) <= free
    ]
    if not smaller:
        return ""
    fits = replace(spec, core_instance_count=smaller[-1])
    of_this = " of this quota" if _mixed(spec, quota) else ""
    return (
        f", or run a cluster that fits: --core-instances {smaller[-1]} "
        f"({vcpus_needed(fits, vcpus, quota)} vCPUs{of_this})"
    )


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
