"""The cluster the doctor checks, and whether the region offers its release and instance
types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import boto3

from rental_kpis.aws import deploy
from rental_kpis.aws.doctor._check import FAIL, OK, Check
from rental_kpis.aws.emr import ClusterSpec
from rental_kpis.aws.names import Deployment


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
