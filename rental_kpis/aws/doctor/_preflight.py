"""Every check, in the order a student would fix them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3

from rental_kpis.aws.doctor._account import cleanup_role_check, leftovers_check
from rental_kpis.aws.doctor._check import Check, guard, guard_many
from rental_kpis.aws.doctor._cluster import (
    chosen_cluster,
    cluster_check,
    instance_type_check,
    release_check,
)
from rental_kpis.aws.doctor._cost import cost_check
from rental_kpis.aws.doctor._network import network_check, security_groups_check
from rental_kpis.aws.doctor._quota import quota_check
from rental_kpis.aws.names import Deployment


def run_checks(
    deployment: Deployment, changes: Mapping[str, Any], session: boto3.Session
) -> list[Check]:
    """Every check, in the order a student would fix them, for the cluster ``chosen_cluster``
    finds; a check that cannot run (access denied, an API the region lacks) is reported as
    such, never raised."""
    spec, origin = chosen_cluster(deployment, changes, session)
    return [
        cluster_check(spec, origin),
        guard("EMR release", lambda: release_check(spec, session)),
        guard("instance types", lambda: instance_type_check(spec, session)),
        guard("network", lambda: network_check(spec, session)),
        guard("EMR security groups", lambda: security_groups_check(spec, session)),
        *guard_many("vCPU quota", lambda: quota_check(spec, session)),
        guard("EMR clean-up role", lambda: cleanup_role_check(session)),
        guard("earlier setup", lambda: leftovers_check(deployment, session)),
        cost_check(spec),
    ]
