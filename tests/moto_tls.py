"""Make moto evaluate the one bucket-policy condition the project uses, ``aws:SecureTransport``.

moto ignores the Condition of bucket policies (its docs say so), so the project's "deny every
request that is not TLS" statement would deny every request. Here requests count as TLS, as
boto3's always are against AWS: the statement then never matches, exactly as on S3.
Used in-process (``patched()``) and by ``python tests/moto_tls.py PORT`` (moto_server).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from unittest import mock

from moto.s3.models import FakeBucket

_original = FakeBucket.get_permission


def _denies_only_plain_http(statement: dict) -> bool:
    condition = statement.get("Condition", {})
    return condition.get("Bool", {}).get("aws:SecureTransport") in ("false", False)


def get_permission_over_tls(self, action: str, resource: str):
    if self.policy is None:
        return _original(self, action, resource)
    policy = json.loads(self.policy)
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    kept = [s for s in statements if not _denies_only_plain_http(s)]
    saved = self.policy
    try:
        self.policy = json.dumps({**policy, "Statement": kept}).encode() if kept else None
        return _original(self, action, resource)
    finally:
        self.policy = saved


@contextlib.contextmanager
def patched() -> Iterator[None]:
    with mock.patch.object(FakeBucket, "get_permission", get_permission_over_tls):
        yield


if __name__ == "__main__":
    from moto.server import main

    FakeBucket.get_permission = get_permission_over_tls
    sys.exit(main(["-H", "127.0.0.1", "-p", sys.argv[1]]))
