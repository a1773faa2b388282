"""Every AWS call the project causes, per principal, as IAM sees it: one table in code.

A row is one authorisation AWS makes: the principal whose policy is asked, the IAM action, the
resource ARN and the request's condition keys (``iam:PassedToService``, request and resource
tags). ``tests/test_permissions.py`` renders the policies of ``iam_policies/`` and evaluates
every row with an IAM policy evaluator, so a missing permission fails the suite instead of the
first real run. Standard library only.

One module per principal:

- ``_student``: the credentials that run ``rental-kpis aws …`` and the notebooks (the calls
  Athena makes with the caller's rights too); policy ``iam_policies/operator/``.
- ``_stepfunctions_role``: derived from the state machine definition, one entry per Task
  integration.
- ``_emr_service_role``: what EMR does to provision and clean up the cluster.
- ``_instance_role``: what runs on the cluster's nodes (``emr_ec2_instance_role``).
- ``_crawler_role``: a crawl of ``processed/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rental_kpis.aws.names import Deployment
from rental_kpis.aws.permissions._calls import (
    EC2,
    EMR,
    GLUE,
    NO_PERMISSION_NEEDED,
    PRINCIPALS,
    SAMPLE_RUN_ID,
    SFN,
    STUDENT,
    Arns,
    Call,
    created_cluster_tags,
    propagated,
    tag_on_create,
)
from rental_kpis.aws.permissions._crawler_role import crawler_calls
from rental_kpis.aws.permissions._emr_service_role import emr_service_role_calls
from rental_kpis.aws.permissions._instance_role import instance_role_calls
from rental_kpis.aws.permissions._stepfunctions_role import (
    INTEGRATIONS,
    NoPermissionRows,
    state_machine_calls,
)
from rental_kpis.aws.permissions._student import DOCTOR_VCPU_QUOTAS, student_calls

__all__ = [
    "DOCTOR_VCPU_QUOTAS",
    "EC2",
    "EMR",
    "GLUE",
    "INTEGRATIONS",
    "NO_PERMISSION_NEEDED",
    "PRINCIPALS",
    "SAMPLE_RUN_ID",
    "SFN",
    "STUDENT",
    "Arns",
    "Call",
    "NoPermissionRows",
    "all_calls",
    "crawler_calls",
    "created_cluster_tags",
    "emr_service_role_calls",
    "instance_role_calls",
    "propagated",
    "state_machine_calls",
    "student_calls",
    "tag_on_create",
]


def all_calls(d: Deployment, definition: Mapping[str, Any] | None = None) -> list[Call]:
    """The whole table: every principal's rows (the state machine rendered for ``d``)."""
    from rental_kpis.aws import statemachine

    definition = definition if definition is not None else statemachine.render(d)
    return [
        *student_calls(d),
        *state_machine_calls(d, definition),
        *emr_service_role_calls(d, created_cluster_tags(definition)),
        *instance_role_calls(d),
        *crawler_calls(d),
    ]
