"""The EC2 instance role of the cluster's nodes: the log push to ``emr-logs/``, the step runner's
script fetch, and the S3 requests behind the file-system operations recorded from the real
steps (``emrfs``; ``tests/test_cluster_run.py``)."""

from __future__ import annotations

from collections.abc import Iterable

from rental_kpis.aws import emrfs
from rental_kpis.aws.emrfs import LakeOperation
from rental_kpis.aws.names import Deployment
from rental_kpis.aws.permissions._calls import EC2, Arns, Call, call_rows


def instance_role_calls(d: Deployment, lake_operations: Iterable[LakeOperation] = ()) -> list[Call]:
    """What runs on the cluster with the instance profile's role: EMR's step runner and log
    push, and the S3 requests behind ``lake_operations``, the file-system operations the
    Spark steps make on the lake (``emrfs.requests``). Those are recorded from the real step
    scripts, not listed here (``tests/test_cluster_run.py``)."""
    arn = Arns(d)
    o = arn.obj
    rows = call_rows(EC2, "EMRFS locates the bucket", ["s3:GetBucketLocation"], [arn.bucket])
    rows += call_rows(
        EC2,
        "spark-submit fetches the step script and library zip",
        ["s3:GetObject"],
        [o("scripts/validate_raw.py"), o("scripts/rental_kpis.zip")],
    )
    rows += call_rows(
        EC2,
        "EMR pushes cluster and step logs",
        ["s3:PutObject"],
        [o("emr-logs/j-EXAMPLE0CLUSTER/steps/s-1/stderr.gz")],
    )
    for operation in sorted(set(lake_operations), key=str):
        cause = f"a step's {operation.kind} of {operation.key or 'the bucket'}"
        for request in emrfs.requests(operation):
            if request.key is None:
                context = {"s3:prefix": request.prefix}
                rows += call_rows(EC2, cause, [request.action], [arn.bucket], context)
            else:
                rows += call_rows(EC2, cause, [request.action], [o(request.key)])
    return rows
