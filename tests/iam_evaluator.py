"""Evaluate one request against an identity policy: moto's IAM evaluator, with strict conditions.

moto (pinned) ships an IAM policy evaluator, ``moto.iam.access_control.IAMPolicyStatement``:
it matches ``Action``/``NotAction`` and ``Resource`` with IAM's wildcards, and it is what
moto's own ``enable_iam_authentication`` runs. Its condition support is ``StringEquals`` only,
and a key missing from the request passes. A permission test must not pass on a condition it
did not evaluate, so each statement's ``Condition`` block is evaluated here with IAM's rules
(IAM User Guide, "IAM JSON policy elements: Condition operators" and "Single-valued vs.
multivalued context keys"): every operator of the block must match, a missing key matches only
``Null: true`` and ``ForAllValues``, ``…Like`` operators take ``*`` and ``?``. An operator this
module does not know is an error, never a pass.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Mapping
from typing import Any

from moto.iam.access_control import IAMPolicyStatement, PermissionResult

Context = Mapping[str, str | tuple[str, ...] | list[str]]


class _Statement(IAMPolicyStatement):
    """moto's statement matcher, with IAM's wildcards exactly: ``*`` any run of characters,
    ``?`` any one, every other character literal. moto's own ``_match`` only turns ``*`` into
    ``.*`` and leaves the rest as regular-expression syntax, so a ``?``, ``$`` or ``.`` in an
    ARN (EMRFS's ``<folder>_$folder$`` markers) would not mean what IAM means by it."""

    @staticmethod
    def _match(pattern: str, string: str) -> re.Match[str] | None:
        wild = {"*": ".*", "?": "."}
        regex = "".join(wild.get(char, re.escape(char)) for char in pattern)
        return re.fullmatch(regex, string, flags=re.DOTALL)


def _values(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list | tuple) else [value])]


def _like(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


def _bool(text: str) -> bool:
    return str(text).lower() == "true"


SINGLE = {
    "StringEquals": lambda p, v: v == p,
    "StringNotEquals": lambda p, v: v != p,
    "StringEqualsIgnoreCase": lambda p, v: v.lower() == p.lower(),
    "StringLike": _like,
    "StringNotLike": lambda p, v: not _like(p, v),
    "ArnEquals": lambda p, v: v == p,
    "ArnLike": _like,
    "Bool": lambda p, v: _bool(p) == _bool(v),
}
NEGATIVE = {"StringNotEquals", "StringNotLike"}


def condition_matches(block: Mapping[str, Mapping[str, Any]], context: Context) -> bool:
    """True when every operator and key of a statement's ``Condition`` block matches."""
    for operator, keys in block.items():
        for key, expected in keys.items():
            patterns = _values(expected)
            present = key in context
            actual = _values(context[key]) if present else []
            if operator == "Null":
                if _bool(patterns[0]) == present:
                    return False
                continue
            qualifier, _, base = operator.rpartition(":")
            if_exists = base.endswith("IfExists")
            base = base.removesuffix("IfExists")
            if base not in SINGLE:
                raise ValueError(f"condition operator {operator!r} is not evaluated here")
            test = SINGLE[base]
            negative = base in NEGATIVE

            def one(value: str, test=test, patterns=patterns, negative=negative) -> bool:
                if negative:  # every pattern must be avoided
                    return all(test(p, value) for p in patterns)
                return any(test(p, value) for p in patterns)

            if qualifier == "ForAllValues":
                if not all(one(v) for v in actual):
                    return False
            elif qualifier == "ForAnyValue":
                if not any(one(v) for v in actual):
                    return False
            elif qualifier:
                raise ValueError(f"condition qualifier {qualifier!r} is not evaluated here")
            elif not present:
                if not if_exists:
                    return False
            elif len(actual) != 1 or not one(actual[0]):
                return False
    return True


def allowed(policy: Mapping[str, Any], action: str, resource: str, context: Context) -> bool:
    """IAM's answer for an identity policy alone: an Allow matches and no Deny does."""
    statements = policy["Statement"]
    statements = statements if isinstance(statements, list) else [statements]
    allow = False
    for statement in statements:
        unconditioned = {k: v for k, v in statement.items() if k != "Condition"}
        matched = _Statement(unconditioned).is_action_permitted(action, resource)
        concerned = matched in (PermissionResult.PERMITTED, PermissionResult.DENIED)
        if not concerned:
            continue
        if not condition_matches(statement.get("Condition", {}), context):
            continue
        if statement["Effect"] == "Deny":
            return False
        allow = True
    return allow


def policy_json(policy: Mapping[str, Any]) -> str:
    return json.dumps(policy, indent=1)
