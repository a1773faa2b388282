"""The IAM policies: parliament finds nothing, and the project's own least-privilege rules hold."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from parliament import analyze_policy_string

from rental_kpis.aws import iam
from rental_kpis.aws.names import Deployment

D = Deployment("rental-kpis-policy-test", "eu-west-1", "123456789012")
POLICIES = iam.permission_policies(D)
README = (iam.POLICY_DIR / "README.md").read_text()


def statements(policy: dict) -> list[dict]:
    return [
        {**s, "Action": _list(s["Action"]), "Resource": _list(s["Resource"])}
        for s in policy["Statement"]
    ]


def _list(value) -> list[str]:
    return value if isinstance(value, list) else [value]


def it_has_a_trust_and_a_permission_policy_per_role():
    stems = {p.name.split(".")[0] for p in Path(iam.POLICY_DIR).glob("*.json")}
    assert stems == set(D.roles)
    assert set(iam.trust_policies(D)) == set(POLICIES) == set(D.roles.values())


# The condition keys each service is documented to send when it assumes a role (the pages are
# named in iam_policies/README.md, "Trust policies"). A trust condition on any other key may be
# missing from the request, and then the service cannot assume the role at all.
DOCUMENTED_SOURCE_KEYS = {
    "elasticmapreduce.amazonaws.com": {"aws:SourceAccount", "aws:SourceArn"},
    "states.amazonaws.com": {"aws:SourceAccount", "aws:SourceArn"},
    "ec2.amazonaws.com": set(),
    "glue.amazonaws.com": set(),
}


@pytest.mark.parametrize("role", sorted(POLICIES))
def it_conditions_trust_only_on_keys_the_service_sends(role):
    for statement in iam.trust_policies(D)[role]["Statement"]:
        service = statement["Principal"]["Service"]
        keys = {k for block in statement.get("Condition", {}).values() for k in block}
        assert keys <= DOCUMENTED_SOURCE_KEYS[service], (role, service, keys)


@pytest.mark.parametrize("role", sorted(POLICIES))
def it_passes_parliament(role):
    findings = analyze_policy_string(json.dumps(POLICIES[role])).findings
    assert [(f.issue, f.detail) for f in findings] == []


@pytest.mark.parametrize("role", sorted(POLICIES))
def it_grants_no_wildcard_action_and_s3_only_on_the_bucket(role):
    for statement in statements(POLICIES[role]):
        assert statement["Effect"] == "Allow"
        for action in statement["Action"]:
            assert "*" not in action, (role, action)
        for resource in statement["Resource"]:
            if resource.startswith("arn:aws:s3"):
                # the bucket, a zone's objects (zone/*), the zone's own key (EMRFS's HEAD of
                # the folder) or its folder marker (zone_$folder$)
                zone = r"/[a-z_-]+(/\*|_\?folder\?)?"
                assert re.fullmatch(rf"arn:aws:s3:::{D.bucket}({zone})?", resource), resource


@pytest.mark.parametrize("role", sorted(POLICIES))
def it_passes_only_the_projects_roles(role):
    project_roles = {D.role_arn(r) for r in D.roles.values()}
    for statement in statements(POLICIES[role]):
        if "iam:PassRole" in statement["Action"]:
            assert statement["Action"] == ["iam:PassRole"]
            assert set(statement["Resource"]) <= project_roles
            # StringLike "…amazonaws.com*": the service principal of every partition
            condition = statement["Condition"]
            keys = {**condition.get("StringEquals", {}), **condition.get("StringLike", {})}
            assert "iam:PassedToService" in keys


def it_lists_every_resource_star_action_with_its_reason_in_the_readme():
    star_actions = {
        action
        for policy in POLICIES.values()
        for statement in statements(policy)
        if statement["Resource"] == ["*"]
        for action in statement["Action"]
    }
    assert star_actions  # EC2 Describe* and EMR RunJobFlow have no resource-level permission
    for action in star_actions:
        assert re.search(rf"^\| `{re.escape(action)}` \| .+ \|$", README, re.M), action


def it_documents_every_statement_in_the_readme():
    for policy in POLICIES.values():
        for statement in policy["Statement"]:
            assert f"`{statement['Sid']}`" in README, statement["Sid"]
