"""Where the cluster launches: the default VPC or ``--subnet-id``, and EMR's managed security
groups there."""

from __future__ import annotations

import boto3

from rental_kpis.aws.doctor._check import FAIL, OK, WARN, Check
from rental_kpis.aws.emr import ClusterSpec
from rental_kpis.aws.names import EMR_MANAGED_TAG


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
