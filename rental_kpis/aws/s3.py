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
    return [
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


def ensure_bucket(deployment: Deployment, session: boto3.Session) -> list[str]:
    s3 = session.client("s3")
    bucket = deployment.bucket
    changed: list[str] = []
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
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
        current(lambda: s3.get_public_access_block(Bucket=bucket), "PublicAccessBlockConfiguration")
        != PUBLIC_ACCESS_BLOCK
    ):
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK
        )
        changed.append("block public access")
    rules = current(
        lambda: s3.get_bucket_encryption(Bucket=bucket), "ServerSideEncryptionConfiguration"
    )
    if (
        not rules
        or rules.get("Rules", [{}])[0].get("ApplyServerSideEncryptionByDefault")
        != ENCRYPTION["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    ):
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=ENCRYPTION)
        changed.append("default encryption")
    if s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        changed.append("versioning")
    policy = current(lambda: s3.get_bucket_policy(Bucket=bucket), "Policy")
    if policy is None or json.loads(policy) != bucket_policy(deployment):
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(bucket_policy(deployment)))
        changed.append("TLS-only bucket policy")
    if (
        current(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket), "Rules")
        != lifecycle_rules()
    ):
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": lifecycle_rules()}
        )
        changed.append("lifecycle rules")
    for zone in ZONES:
        if put_if_changed(s3, bucket, f"{zone}/", b""):
            changed.append(f"prefix {zone}/")
    return changed


def put_if_changed(s3, bucket: str, key: str, body: bytes) -> bool:
    """Upload unless the object already holds these bytes (single-part ETag = MD5)."""
    digest = hashlib.md5(body).hexdigest()
    try:
        if s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"') == digest:
            return False
    except s3.exceptions.ClientError:
        pass
    s3.put_object(Bucket=bucket, Key=key, Body=body)
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
            if put_if_changed(s3, deployment.bucket, key, path.read_bytes()):
                uploaded.append(key)
    return uploaded


def list_keys(deployment: Deployment, session: boto3.Session, prefix: str) -> list[str]:
    """Object keys under ``prefix``, sorted, without the ``zone/`` folder markers."""
    paginator = session.client("s3").get_paginator("list_objects_v2")
    pages = paginator.paginate(Bucket=deployment.bucket, Prefix=prefix)
    keys = (o["Key"] for page in pages for o in page.get("Contents", []))
    return sorted(k for k in keys if not k.endswith("/"))


def read_bytes(deployment: Deployment, session: boto3.Session, key: str) -> bytes:
    return session.client("s3").get_object(Bucket=deployment.bucket, Key=key)["Body"].read()


def read_json(deployment: Deployment, session: boto3.Session, key: str) -> dict[str, Any]:
    return json.loads(read_bytes(deployment, session, key))


def read_parquet(uri: str, session: boto3.Session):
    """A Parquet dataset folder (Hive partitions included) as one pandas frame."""
    import awswrangler as wr

    return wr.s3.read_parquet(uri, dataset=True, boto3_session=session)


def delete_bucket(deployment: Deployment, session: boto3.Session) -> list[str]:
    s3 = session.client("s3")
    try:
        s3.head_bucket(Bucket=deployment.bucket)
    except s3.exceptions.ClientError:
        return []
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=deployment.bucket):
        doomed = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        for start in range(0, len(doomed), 1000):
            s3.delete_objects(
                Bucket=deployment.bucket, Delete={"Objects": doomed[start : start + 1000]}
            )
    s3.delete_bucket(Bucket=deployment.bucket)
    return [f"bucket {deployment.bucket} and every object version"]
