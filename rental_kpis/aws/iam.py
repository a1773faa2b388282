"""IAM: the project's four roles, their trust and permission policies rendered from
``iam_policies/`` (``${…}`` placeholders), created idempotently and removed completely."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rental_kpis.aws.names import Deployment, substitute
from rental_kpis.project import IAM_POLICY_DIR

if TYPE_CHECKING:
    import boto3

POLICY_DIR = IAM_POLICY_DIR
OPERATOR_POLICY = POLICY_DIR / "operator" / "student_operator.json"
INLINE_POLICY = "rental-kpis-least-privilege"


def render_policy(path: Path, deployment: Deployment) -> dict[str, Any]:
    return substitute(json.loads(path.read_text()), deployment.placeholders())


def permission_policies(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """Role name -> its rendered permission policy."""
    return {
        role: render_policy(POLICY_DIR / f"{stem}.json", deployment)
        for stem, role in deployment.roles.items()
    }


def operator_policy(deployment: Deployment) -> dict[str, Any]:
    """What the student's own credentials need for setup, run, doctor, teardown and the
    notebooks (``rental-kpis aws policy`` prints it for an administrator to attach)."""
    return render_policy(OPERATOR_POLICY, deployment)


def policies_by_principal(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """Principal of ``rental_kpis.aws.permissions`` -> the identity policy IAM evaluates."""
    roles = permission_policies(deployment)
    found = {stem: roles[role] for stem, role in deployment.roles.items()}
    return {"student": operator_policy(deployment), **found}


def trust_policies(deployment: Deployment) -> dict[str, dict[str, Any]]:
    return {
        role: render_policy(POLICY_DIR / f"{stem}.trust.json", deployment)
        for stem, role in deployment.roles.items()
    }


def ensure_roles(deployment: Deployment, session: boto3.Session) -> list[str]:
    """Create or update every role (trust + inline policy) and the EC2 instance profile.
    Returns what changed, so a second run can say it changed nothing."""
    iam = session.client("iam")
    changed: list[str] = []
    trusts = trust_policies(deployment)
    for role, policy in permission_policies(deployment).items():
        trust = json.dumps(trusts[role])
        try:
            current = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        except iam.exceptions.NoSuchEntityException:
            iam.create_role(
                RoleName=role,
                AssumeRolePolicyDocument=trust,
                Description="rental_kpis pipeline (rental-kpis aws setup)",
                Tags=[{"Key": "project", "Value": "rental_kpis"}],
            )
            changed.append(f"role {role}")
            current = trusts[role]
        if _as_dict(current) != trusts[role]:
            iam.update_assume_role_policy(RoleName=role, PolicyDocument=trust)
            changed.append(f"trust of {role}")
        try:
            existing = iam.get_role_policy(RoleName=role, PolicyName=INLINE_POLICY)
            same = _as_dict(existing["PolicyDocument"]) == policy
        except iam.exceptions.NoSuchEntityException:
            same = False
        if not same:
            iam.put_role_policy(
                RoleName=role, PolicyName=INLINE_POLICY, PolicyDocument=json.dumps(policy)
            )
            changed.append(f"policy of {role}")
    changed += _ensure_instance_profile(iam, deployment.emr_ec2_role)
    return changed


def _ensure_instance_profile(iam, name: str) -> list[str]:
    changed = []
    try:
        profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except iam.exceptions.NoSuchEntityException:
        profile = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        changed.append(f"instance profile {name}")
    if name not in [r["RoleName"] for r in profile.get("Roles", [])]:
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
        changed.append(f"role {name} in its instance profile")
    return changed


def delete_roles(deployment: Deployment, session: boto3.Session) -> list[str]:
    """Remove the instance profile, inline policies and roles; absent ones are skipped."""
    iam = session.client("iam")
    removed: list[str] = []
    name = deployment.emr_ec2_role
    try:
        profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        for role in profile.get("Roles", []):
            iam.remove_role_from_instance_profile(
                InstanceProfileName=name, RoleName=role["RoleName"]
            )
        iam.delete_instance_profile(InstanceProfileName=name)
        removed.append(f"instance profile {name}")
    except iam.exceptions.NoSuchEntityException:
        pass
    for role in deployment.roles.values():
        try:
            for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]:
                iam.delete_role_policy(RoleName=role, PolicyName=policy)
            iam.delete_role(RoleName=role)
            removed.append(f"role {role}")
        except iam.exceptions.NoSuchEntityException:
            continue
    return removed


def _as_dict(document: Any) -> dict[str, Any]:
    """IAM returns policy documents URL-decoded as dicts (boto3) or as JSON strings."""
    if isinstance(document, str):
        from urllib.parse import unquote

        return json.loads(unquote(document))
    return document
