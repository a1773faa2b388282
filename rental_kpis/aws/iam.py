"""IAM: the project's four roles, their trust and permission policies rendered from
``iam_policies/`` (``${…}`` placeholders), created idempotently and removed completely."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rental_kpis.aws.names import Deployment, substitute
from rental_kpis.project import IAM_POLICY_DIR

if TYPE_CHECKING:
    import boto3

POLICY_DIR = IAM_POLICY_DIR
OPERATOR_POLICY = POLICY_DIR / "operator" / "student_operator.json"
INLINE_POLICY = "rental-kpis-least-privilege"
EMR_SERVICE = "elasticmapreduce.amazonaws.com"
CLEANUP_ROLE = "AWSServiceRoleForEMRCleanup"
T = TypeVar("T")


@dataclass(frozen=True)
class Propagation:
    """How setup waits out IAM's eventual consistency: a role that IAM has created may not yet
    be usable by Glue, Step Functions or EMR for some seconds (IAM User Guide, "Troubleshooting
    IAM": changes are not immediately visible everywhere). Tests pass ``sleep`` and delays of 0.
    """

    delays: tuple[float, ...] = (2.0, 4.0, 8.0, 15.0, 30.0, 30.0)
    waiter_delay: int = 2
    waiter_attempts: int = 20
    sleep: Callable[[float], None] = time.sleep
    say: Callable[[str], None] = lambda message: None

    def retry(self, call: Callable[[], T], what: str) -> T:
        """Run ``call``; while AWS answers that a new role is not usable yet, wait and retry
        with growing delays, saying so. Any other error, or the last attempt's, propagates."""
        for attempt, delay in enumerate((*self.delays, None), start=1):
            try:
                return call()
            except Exception as error:
                if delay is None or not is_propagation_error(error):
                    raise
                self.say(
                    f"waiting {delay:.0f} s for IAM to propagate before {what} "
                    f"(attempt {attempt}: {_message(error)})"
                )
                self.sleep(delay)
        raise AssertionError("unreachable")


def is_propagation_error(error: Exception) -> bool:
    """The answers services give for a role IAM has not propagated to them yet: Glue
    (``InvalidInputException`` … unable to assume role), Step Functions (``AccessDeniedException``
    / ``InvalidArn`` … not authorized to assume the provided role), EMR (``ValidationException``
    … invalid InstanceProfile / role)."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return False
    code = response.get("Error", {}).get("Code", "")
    message = response.get("Error", {}).get("Message", "").lower()
    codes = {"InvalidInputException", "AccessDeniedException", "InvalidArn", "ValidationException"}
    words = ("assume", "role", "instanceprofile", "instance profile")
    return code in codes and any(word in message for word in words)


def _message(error: Exception) -> str:
    response = getattr(error, "response", {})
    return f"{response.get('Error', {}).get('Code', type(error).__name__)}"


def render_policy(path: Path, deployment: Deployment) -> dict[str, Any]:
    return substitute(json.loads(path.read_text()), deployment.placeholders())


def permission_policies(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """Role name -> its rendered permission policy."""
    return {
        role: render_policy(POLICY_DIR / f"{stem}.json", deployment)
        for stem, role in deployment.roles.items()
    }


def operator_policy(deployment: Deployment) -> dict[str, Any]:
    """The policy the student's own credentials need (``rental-kpis aws policy`` prints it)."""
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


def ensure_roles(
    deployment: Deployment, session: boto3.Session, propagation: Propagation | None = None
) -> list[str]:
    """Create or update every role (trust + inline policy) and the EC2 instance profile, then
    wait until IAM reports them (the services that use them may still lag: ``Propagation``).
    Returns what changed, so a second run can say it changed nothing."""
    propagation = propagation or Propagation()
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
    if changed:
        propagation.say("waiting until IAM reports the new roles and instance profile")
        config = {"Delay": propagation.waiter_delay, "MaxAttempts": propagation.waiter_attempts}
        for role in deployment.roles.values():
            iam.get_waiter("role_exists").wait(RoleName=role, WaiterConfig=config)
        iam.get_waiter("instance_profile_exists").wait(
            InstanceProfileName=deployment.emr_ec2_role, WaiterConfig=config
        )
    return changed


def cleanup_role_exists(session: boto3.Session) -> bool:
    iam = session.client("iam")
    try:
        iam.get_role(RoleName=CLEANUP_ROLE)
    except iam.exceptions.NoSuchEntityException:
        return False
    return True


def ensure_cleanup_role(session: boto3.Session) -> list[str]:
    """The EMR clean-up service-linked role, which the Step Functions ``createCluster``
    integration needs to exist or be creatable (Step Functions developer guide, "Create and
    manage Amazon EMR clusters with Step Functions"; EMR Management Guide, "Using
    service-linked roles for Amazon EMR for cleanup"). Creating it when it exists is refused
    with "has been taken": that is the idempotent case, not an error."""
    if cleanup_role_exists(session):
        return []
    iam = session.client("iam")
    try:
        iam.create_service_linked_role(AWSServiceName=EMR_SERVICE)
    except iam.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code in ("EntityAlreadyExists", "InvalidInput") and (
            "taken" in message or "exist" in message
        ):
            return []
        raise
    return [f"EMR clean-up service-linked role {CLEANUP_ROLE}"]


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
            # A managed policy a student attached by hand would make DeleteRole fail with
            # DeleteConflict: detach it (the policy itself stays, it is not the project's).
            attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
            for policy in attached:
                iam.detach_role_policy(RoleName=role, PolicyArn=policy["PolicyArn"])
                removed.append(f"managed policy {policy['PolicyName']} from role {role}")
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
