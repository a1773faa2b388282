"""The project bucket: hardened settings, uploads that skip unchanged files, reads of what the
steps wrote, and deletion of every object version."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from rental_kpis.aws.names import Deployment
from rental_kpis.layout import ZONES, raw_input_files
from rental_kpis.project import EMR_STEPS_DIR, LIBRARY_ZIP, build_library_zip

EXPIRING_PREFIXES = ("query-results/", "emr-logs/")
EXPIRE_AFTER_DAYS = 30
# Versioning keeps every overwritten Parquet file: without this, each run's replaced tables
# would bill forever (S3 User Guide, "Lifecycle configuration elements": NoncurrentVersion
# Expiration, ExpiredObjectDeleteMarker).
NONCURRENT_DAYS = 7


def bucket_policy(deployment: Deployment) -> dict[str, Any]:
    arn = f"arn:{deployment.partition}:s3:::{deployment.bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def lifecycle_rules() -> list[dict[str, Any]]:
    """Query results and EMR logs expire after 30 days; bucket-wide, a replaced or deleted
    object's old versions expire after 7 days and delete markers left alone are removed."""
    bucket_wide = {
        "ID": "expire-noncurrent-versions",
        "Filter": {},
        "Status": "Enabled",
        "Expiration": {"ExpiredObjectDeleteMarker": True},
        "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_DAYS},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    return [bucket_wide] + [
        {
            "ID": f"expire-{prefix.rstrip('/')}",
            "Filter": {"Prefix": prefix},
            "Status": "Enabled",
            "Expiration": {"Days": EXPIRE_AFTER_DAYS},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }
        for prefix in EXPIRING_PREFIXES
    ]


PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}


def owner(deployment: Deployment) -> dict[str, str]:
    """``ExpectedBucketOwner`` for every call on the bucket: never another account's bucket."""
    return {"ExpectedBucketOwner": deployment.account_id}


def ensure_bucket(deployment: Deployment, session: boto3.Session) -> list[str]:
    s3 = session.client("s3")
    bucket = deployment.bucket
    mine = owner(deployment)
    changed: list[str] = []
    try:
        s3.head_bucket(Bucket=bucket, **mine)
    except s3.exceptions.ClientError as error:
        if _code(error) not in ("404", "NoSuchBucket", "NotFound"):
            raise  # 403: the name is taken by another account, or access is denied
        extra = (
            {}
            if deployment.region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": deployment.region}}
        )
        s3.create_bucket(Bucket=bucket, **extra)
        changed.append(f"bucket {bucket}")

    def current(call: Callable[[], dict], key: str) -> Any:
        try:
            return call().get(key)
        except s3.exceptions.ClientError:
            return None

    if (
        current(
            lambda: s3.get_public_access_block(Bucket=bucket, **mine),
            "PublicAccessBlockConfiguration",
        )
        != PUBLIC_ACCESS_BLOCK
    ):
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK, **mine
        )
        changed.append("block public access")
    rules = current(
        lambda: s3.get_bucket_encryption(Bucket=bucket, **mine), "ServerSideEncryptionConfiguration"
    )
    if (
        not rules
        or rules.get("Rules", [{}])[0].get("ApplyServerSideEncryptionByDefault")
        != ENCRYPTION["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    ):
        s3.put_bucket_encryption(
            Bucket=bucket, ServerSideEncryptionConfiguration=ENCRYPTION, **mine
        )
        changed.append("default encryption")
    if s3.get_bucket_versioning(Bucket=bucket, **mine).get("Status") != "Enabled":
        s3.put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}, **mine
        )
        changed.append("versioning")
    policy = current(lambda: s3.get_bucket_policy(Bucket=bucket, **mine), "Policy")
    if policy is None or json.loads(policy) != bucket_policy(deployment):
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(bucket_policy(deployment)), **mine)
        changed.append("TLS-only bucket policy")
    rules_now = current(
        lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket, **mine), "Rules"
    )
    if _canonical(rules_now) != _canonical(lifecycle_rules()):
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": lifecycle_rules()}, **mine
        )
        changed.append("lifecycle rules")
    for zone in ZONES:
        if put_if_changed(s3, deployment, f"{zone}/", b""):
            changed.append(f"prefix {zone}/")
    return changed


def put_if_changed(s3, deployment: Deployment, key: str, body: bytes) -> bool:
    """Upload unless the object already holds these bytes (single-part ETag = MD5)."""
    digest = hashlib.md5(body).hexdigest()
    bucket, mine = deployment.bucket, owner(deployment)
    try:
        if s3.head_object(Bucket=bucket, Key=key, **mine)["ETag"].strip('"') == digest:
            return False
    except s3.exceptions.ClientError:
        pass
    s3.put_object(Bucket=bucket, Key=key, Body=body, **mine)
    return True


def upload_inputs(deployment: Deployment, session: boto3.Session, raw: Path) -> list[str]:
    """Upload ``raw/<dataset>/*.csv``, the step scripts and the library zip (unchanged: skipped)."""
    s3 = session.client("s3")
    files = {
        f"raw/{dataset}/{path.name}": path
        for dataset, paths in raw_input_files(raw).items()
        for path in paths
    }
    for script in sorted(EMR_STEPS_DIR.glob("*.py")):
        files[f"scripts/{script.name}"] = script
    uploaded = []
    with tempfile.TemporaryDirectory() as tmp:
        files[f"scripts/{LIBRARY_ZIP}"] = build_library_zip(Path(tmp))
        for key, path in files.items():
            if put_if_changed(s3, deployment, key, path.read_bytes()):
                uploaded.append(key)
    return uploaded


def bucket_region(deployment: Deployment, session: boto3.Session) -> str | None:
    """Where the bucket lives (None: no such bucket). ``GetBucketLocation`` answers
    ``None`` for us-east-1 (S3 API Reference, "GetBucketLocation")."""
    s3 = session.client("s3")
    try:
        found = s3.get_bucket_location(Bucket=deployment.bucket, **owner(deployment))
    except s3.exceptions.ClientError as error:
        if _code(error) in ("NoSuchBucket", "404"):
            return None
        raise
    return found.get("LocationConstraint") or "us-east-1"


def list_keys(deployment: Deployment, session: boto3.Session, prefix: str) -> list[str]:
    """Object keys under ``prefix``, sorted, without the ``zone/`` folder markers."""
    paginator = session.client("s3").get_paginator("list_objects_v2")
    pages = paginator.paginate(Bucket=deployment.bucket, Prefix=prefix, **owner(deployment))
    keys = (o["Key"] for page in pages for o in page.get("Contents", []))
    return sorted(k for k in keys if not k.endswith("/"))


def read_bytes(deployment: Deployment, session: boto3.Session, key: str) -> bytes:
    s3 = session.client("s3")
    return s3.get_object(Bucket=deployment.bucket, Key=key, **owner(deployment))["Body"].read()


def read_json(deployment: Deployment, session: boto3.Session, key: str) -> dict[str, Any]:
    return json.loads(read_bytes(deployment, session, key))


def write_json(
    deployment: Deployment, session: boto3.Session, key: str, body: dict[str, Any]
) -> None:
    """Write ``body`` as one JSON object at ``key`` (a run record), replacing what is there."""
    s3 = session.client("s3")
    data = (json.dumps(body, indent=2, default=str) + "\n").encode()
    s3.put_object(
        Bucket=deployment.bucket,
        Key=key,
        Body=data,
        ContentType="application/json",
        **owner(deployment),
    )


def read_parquet(uri: str, session: boto3.Session, columns: list[str] | None = None):
    """A Parquet dataset folder (Hive partitions included) as one pandas frame."""
    import awswrangler as wr

    return wr.s3.read_parquet(uri, dataset=True, columns=columns, boto3_session=session)


def delete_bucket(deployment: Deployment, session: boto3.Session) -> list[str]:
    s3 = session.client("s3")
    mine = owner(deployment)
    try:
        s3.head_bucket(Bucket=deployment.bucket, **mine)
    except s3.exceptions.ClientError:
        return []
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=deployment.bucket, **mine):
        doomed = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        for start in range(0, len(doomed), 1000):
            s3.delete_objects(
                Bucket=deployment.bucket, Delete={"Objects": doomed[start : start + 1000]}, **mine
            )
    s3.delete_bucket(Bucket=deployment.bucket, **mine)
    return [f"bucket {deployment.bucket} and every object version"]


def _code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


def _canonical(rules: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Lifecycle rules as compared: S3 may answer an empty filter as ``{"Prefix": ""}``."""
    if rules is None:
        return None
    out = []
    for rule in rules:
        rule = dict(rule)
        if rule.get("Filter") in ({"Prefix": ""}, {}):
            rule["Filter"] = {}
        out.append(rule)
    return sorted(out, key=lambda r: r.get("ID", ""))
