"""The EMR service role: what EMR does to provision and clean up a cluster of this shape (one
primary and N core instance groups, EMR-managed security groups, a subnet of the default VPC or
``--subnet-id``), taken from the managed policy ``AmazonEMRServicePolicy_v2`` (EMR Management
Guide, "Service role for Amazon EMR (EMR role)")."""

from __future__ import annotations

from collections.abc import Mapping

from rental_kpis.aws.names import Deployment
from rental_kpis.aws.permissions._calls import (
    EMR,
    EMR_TAGGED,
    EMR_TAGS_ON_CREATE,
    Arns,
    Call,
    call_rows,
    propagated,
)

# AmazonEMRServicePolicy_v2's ListActionsForEC2Resources: read-only, no resource-level support.
EMR_DESCRIBE = (
    "ec2:DescribeAccountAttributes",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeCapacityReservations",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeInstanceTypeOfferings",
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeNetworkAcls",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribePlacementGroups",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVolumeStatus",
    "ec2:DescribeVolumes",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeVpcs",
)


# Every kind of EC2 resource EMR makes or uses for a cluster; one example ARN each.
RESOURCE_KINDS = (
    "instance",
    "volume",
    "network-interface",
    "subnet",
    "security-group",
    "launch-template",
    "vpc",
)


def emr_service_role_calls(d: Deployment, cluster_tags: Mapping[str, str]) -> list[Call]:
    """Provisioning and clean-up of one cluster of this shape, created with ``cluster_tags``,
    by EMR with the service role. What EMR creates carries the cluster's tags (propagated), its
    own security groups the EMR managed-policy tag (automatic)."""
    res = _resources(d)
    return [
        *_reads(d, res),
        *_security_groups(res),
        *_launches(res, cluster_tags),
        *_clean_up(d, res, cluster_tags),
    ]


def _resources(d: Deployment) -> dict[str, str]:
    """An example ARN of each EC2 resource kind, the image and a placement group."""
    ec2 = Arns(d).ec2
    res = {kind: f"{ec2}:{kind}/{kind[:3]}-0example" for kind in RESOURCE_KINDS}
    res["image"] = f"arn:{d.partition}:ec2:{d.region}::image/ami-0example"
    res["placement-group"] = f"{ec2}:placement-group/EMR_example"
    return res


def _reads(d: Deployment, res: Mapping[str, str]) -> list[Call]:
    rows = call_rows(EMR, "EMR reads the network, images and instance states", EMR_DESCRIBE, ["*"])
    rows += call_rows(
        EMR,
        "EMR reads capacity-reservation groups",
        ["resource-groups:ListGroupResources"],
        [f"arn:{d.partition}:resource-groups:{d.region}:{d.account_id}:group/example"],
    )
    return rows + call_rows(
        EMR, "EMR checks the VPC's DNS settings", ["ec2:DescribeVpcAttribute"], [res["vpc"]]
    )


def _security_groups(res: Mapping[str, str]) -> list[Call]:
    """EMR's managed security groups: created tagged, their rules changed only when tagged."""
    cause = "EMR creates the managed security groups (tagged on create)"
    rows = call_rows(EMR, cause, ["ec2:CreateSecurityGroup"], [res["vpc"]])
    rows += call_rows(
        EMR, cause, ["ec2:CreateSecurityGroup"], [res["security-group"]], EMR_TAGS_ON_CREATE
    )
    rows += call_rows(
        EMR,
        cause,
        ["ec2:CreateTags"],
        [res["security-group"]],
        {**EMR_TAGS_ON_CREATE, "ec2:CreateAction": "CreateSecurityGroup"},
    )
    return rows + call_rows(
        EMR,
        "EMR opens the rules of its own security groups",
        [
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupEgress",
        ],
        [res["security-group"]],
        EMR_TAGGED,
    )


def _launches(res: Mapping[str, str], cluster_tags: Mapping[str, str]) -> list[Call]:
    """The instances: a launch template, RunInstances, network interfaces, tags on create."""
    made = propagated(cluster_tags)
    made_on_create = {f"aws:RequestTag/{k}": v for k, v in cluster_tags.items()}
    cause = "EMR launches the instances (launch template + RunInstances)"
    rows = call_rows(
        EMR, cause, ["ec2:CreateLaunchTemplate"], [res["launch-template"]], made_on_create
    )
    rows += call_rows(
        EMR,
        cause,
        ["ec2:CreateLaunchTemplateVersion", "ec2:RunInstances"],
        [res["launch-template"]],
        made,
    )
    rows += call_rows(
        EMR, cause, ["ec2:RunInstances"], [res["instance"], res["volume"]], made_on_create
    )
    rows += call_rows(
        EMR,
        cause,
        ["ec2:RunInstances"],
        [res["network-interface"], res["subnet"], res["security-group"], res["image"]],
    )
    rows += call_rows(
        EMR, cause, ["ec2:CreateNetworkInterface"], [res["network-interface"]], made_on_create
    )
    rows += call_rows(
        EMR, cause, ["ec2:CreateNetworkInterface"], [res["subnet"], res["security-group"]]
    )
    for action in ("RunInstances", "CreateLaunchTemplate", "CreateNetworkInterface"):
        rows += call_rows(
            EMR,
            f"tags on create ({action})",
            ["ec2:CreateTags"],
            [res["instance"], res["volume"], res["network-interface"], res["launch-template"]],
            {"ec2:CreateAction": action},
        )
    return rows


def _clean_up(d: Deployment, res: Mapping[str, str], cluster_tags: Mapping[str, str]) -> list[Call]:
    """What EMR changes and deletes on what it made, placement groups, the role it passes."""
    made = propagated(cluster_tags)
    rows = call_rows(
        EMR,
        "EMR tags and untags what it made",
        ["ec2:CreateTags", "ec2:DeleteTags"],
        [res["instance"], res["volume"], res["network-interface"]],
        made,
    )
    rows += call_rows(
        EMR,
        "EMR stops and cleans up the cluster's instances",
        ["ec2:TerminateInstances", "ec2:ModifyInstanceAttribute"],
        [res["instance"]],
        made,
    )
    rows += call_rows(
        EMR, "EMR cleans up", ["ec2:DeleteNetworkInterface"], [res["network-interface"]], made
    )
    rows += call_rows(
        EMR, "EMR cleans up", ["ec2:DeleteLaunchTemplate"], [res["launch-template"]], made
    )
    rows += call_rows(
        EMR,
        "EMR placement groups",
        ["ec2:CreatePlacementGroup", "ec2:DeletePlacementGroup"],
        [res["placement-group"]],
    )
    return rows + call_rows(
        EMR,
        "EMR hands the instance profile's role to EC2",
        ["iam:PassRole"],
        [Arns(d).role(d.emr_ec2_role)],
        {"iam:PassedToService": "ec2.amazonaws.com"},
    )
