"""What the sprint notebooks call: one backend object with the same methods on both backends.

A notebook says ``env = start(notebook, "local", …)`` (or ``"aws"``: ``open_backend`` after its
parameters and prerequisites are checked, ``order``) and then calls the same
methods either way: upload and verify the raw zone, run the Spark steps, crawl, query, run the
whole pipeline, read a run's facts. Every method returns a pandas frame or a plain dict that a
notebook cell shows as it is. Not used on EMR.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rental_kpis.errors import UsageError
from rental_kpis.walkthrough.local_backend import LocalBackend
from rental_kpis.walkthrough.order import NOTEBOOKS, start
from rental_kpis.walkthrough.tables import (
    catalog_frame,
    catalog_tables,
    cluster_table,
    deployment_of,
    execution_timeline,
    inspect_csv,
    layout_table,
    local_raw_uri,
    policy_table,
    raw_check,
    raw_verdict,
    roles_table,
    rounded,
    run_facts,
    source_beside,
    stage_timeline,
    steps_table,
)

if TYPE_CHECKING:
    from rental_kpis.walkthrough.aws_backend import AwsBackend

__all__ = [
    "NOTEBOOKS",
    "AwsBackend",
    "LocalBackend",
    "catalog_frame",
    "catalog_tables",
    "cluster_table",
    "deployment_of",
    "execution_timeline",
    "inspect_csv",
    "layout_table",
    "local_raw_uri",
    "open_backend",
    "policy_table",
    "raw_check",
    "raw_verdict",
    "roles_table",
    "rounded",
    "run_facts",
    "source_beside",
    "stage_timeline",
    "start",
    "steps_table",
]


def __getattr__(name: str):
    """``AwsBackend`` is imported on first use: boto3 and awswrangler load only for AWS."""
    if name == "AwsBackend":
        from rental_kpis.walkthrough.aws_backend import AwsBackend

        return AwsBackend
    raise AttributeError(name)


def open_backend(
    backend: str,
    *,
    lake: str | Path = "lake",
    raw: str | Path = "data/raw",
    bucket: str = "",
    region: str = "",
) -> LocalBackend | AwsBackend:
    """The notebooks' one switch: ``"local"`` (a lake folder) or ``"aws"`` (a bucket)."""
    if backend == "local":
        return LocalBackend(lake, raw, bucket, region)
    if backend == "aws":
        if not bucket:
            raise UsageError(
                'backend="aws" needs bucket="…" (the one `rental-kpis aws setup` made)'
            )
        from rental_kpis.walkthrough.aws_backend import AwsBackend

        return AwsBackend(bucket, region, raw)
    raise UsageError(f'backend must be "local" or "aws", not {backend!r}')
