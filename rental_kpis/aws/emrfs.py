"""The S3 requests behind a Spark step's file-system operations on an ``s3://`` lake (EMRFS),
as the IAM actions and resources S3 authorises them with. Standard library only.

A step touches the lake through Hadoop's FileSystem API (Spark's sources and committers, and
``rental_kpis.spark.fs``). On EMR, ``s3://`` is EMRFS, which turns each operation into S3
requests; ``tests/test_cluster_run.py`` records the operations of the real step scripts and
evaluates what this module derives from them against the rendered instance-role policy.

The mapping, per operation kind (S3 API Reference, each request's "Permissions" section;
"Actions, resources, and condition keys for Amazon S3"; Amazon EMR Management Guide, "Work
with storage and file systems" and the Knowledge Center page "Why does Amazon EMR create
files with the $folder$ suffix in my Amazon S3 bucket?"):

- ``read``: GetObject on the key (``s3:GetObject``).
- ``stat`` (exists, getFileStatus): HeadObject on the key and on its ``<key>_$folder$`` marker,
  each needing ``s3:GetObject`` whether or not the object exists, then a listing of ``key/``
  (``s3:ListBucket`` with ``s3:prefix``): on S3 a folder is a marker or a prefix, found by
  asking for both (the order Hadoop's S3 file systems, where the marker convention comes from,
  use).
- ``list``: ListObjectsV2 under ``key/`` (``s3:ListBucket``, ``s3:prefix``).
- ``write``: PutObject, or a multipart upload (``s3:PutObject``; its abort,
  ``s3:AbortMultipartUpload``).
- ``mkdir``: EMRFS writes an empty ``<key>_$folder$`` marker object (``s3:PutObject``).
- ``delete``: DeleteObject of the key, its marker and what is under ``key/``
  (``s3:DeleteObject``).
- ``rename``: S3 has none: CopyObject of every object to the new key (``s3:GetObject`` on the
  source, ``s3:PutObject`` on the target), then DeleteObject of the source
  (``s3:DeleteObject``). A folder is renamed object by object, so a reader listing it in
  between sees it partly copied.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("read", "stat", "list", "write", "mkdir", "delete", "rename")
FOLDER_MARKER = "_$folder$"
# An object under a folder: an operation on the folder reaches each of them.
ANY_OBJECT = "part-00000.snappy.parquet"


@dataclass(frozen=True)
class LakeOperation:
    """One file-system operation on the lake, by key (the path under the lake's root; ``""``
    is the root, the bucket). ``target`` is a rename's new key."""

    kind: str
    key: str
    target: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")


@dataclass(frozen=True)
class S3Request:
    """One authorisation S3 makes: ``action`` on the object ``key`` (``None``: the bucket,
    then ``prefix`` is the listing's ``s3:prefix``)."""

    action: str
    key: str | None
    prefix: str = ""


def _listing(key: str) -> S3Request:
    return S3Request("s3:ListBucket", None, f"{key}/" if key else "")


def _objects(key: str) -> list[str]:
    """The key, its folder marker and an object under it: what a folder operation reaches."""
    return [key, key + FOLDER_MARKER, f"{key}/{ANY_OBJECT}"]


def requests(operation: LakeOperation) -> list[S3Request]:
    """The S3 authorisations EMRFS needs for ``operation`` (see the module's table)."""
    kind, key = operation.kind, operation.key
    if key == "":  # the bucket itself: only ever listed
        return [_listing(key)]
    if kind == "read":
        return [S3Request("s3:GetObject", key)]
    if kind == "stat":
        marker = S3Request("s3:GetObject", key + FOLDER_MARKER)
        return [S3Request("s3:GetObject", key), marker, _listing(key)]
    if kind == "list":
        return [_listing(key)]
    if kind == "write":
        return [S3Request("s3:PutObject", key), S3Request("s3:AbortMultipartUpload", key)]
    if kind == "mkdir":
        return [S3Request("s3:PutObject", key + FOLDER_MARKER)]
    if kind == "delete":
        return [_listing(key), *(S3Request("s3:DeleteObject", k) for k in _objects(key))]
    sources, targets = _objects(key), _objects(operation.target)
    return [
        _listing(key),
        *(S3Request("s3:GetObject", k) for k in sources),
        *(S3Request("s3:PutObject", k) for k in targets),
        *(S3Request("s3:DeleteObject", k) for k in sources),
    ]
