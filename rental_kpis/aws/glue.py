"""The Glue database and crawler over ``processed/``: create, crawl and wait, list, delete."""

from __future__ import annotations

import time
from typing import Any

import boto3

from rental_kpis.aws.names import Deployment


def crawler_spec(deployment: Deployment) -> dict[str, Any]:
    return {
        "Name": deployment.crawler,
        "Role": deployment.role_arn(deployment.glue_crawler_role),
        "DatabaseName": deployment.database,
        "Targets": {"S3Targets": [{"Path": p} for p in deployment.processed_prefixes]},
        "SchemaChangePolicy": {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"},
        "RecrawlPolicy": {"RecrawlBehavior": "CRAWL_EVERYTHING"},
    }


def ensure_catalog(deployment: Deployment, session: boto3.Session) -> list[str]:
    glue = session.client("glue")
    changed = []
    try:
        glue.get_database(Name=deployment.database)
    except glue.exceptions.EntityNotFoundException:
        glue.create_database(
            DatabaseInput={"Name": deployment.database, "Description": "rental_kpis KPI tables"}
        )
        changed.append(f"database {deployment.database}")
    spec = crawler_spec(deployment)
    try:
        current = glue.get_crawler(Name=deployment.crawler)["Crawler"]
    except glue.exceptions.EntityNotFoundException:
        glue.create_crawler(**spec, Tags={"project": "rental_kpis"})
        return [*changed, f"crawler {deployment.crawler}"]
    same = (
        current.get("Role") in (spec["Role"], deployment.glue_crawler_role)
        and current.get("DatabaseName") == spec["DatabaseName"]
        and [t["Path"] for t in current["Targets"].get("S3Targets", [])]
        == deployment.processed_prefixes
    )
    if not same:
        glue.update_crawler(**spec)
        changed.append(f"crawler {deployment.crawler} targets")
    return changed


def start_crawl_and_wait(
    deployment: Deployment,
    session: boto3.Session,
    *,
    poll_seconds: float = 15.0,
    timeout_seconds: float = 900.0,
) -> None:
    """Start the crawler and wait until it is READY again."""
    glue = session.client("glue")
    glue.start_crawler(Name=deployment.crawler)
    started = time.monotonic()
    while glue.get_crawler(Name=deployment.crawler)["Crawler"]["State"] != "READY":
        if time.monotonic() - started > timeout_seconds:
            raise TimeoutError(f"crawler {deployment.crawler} still running")
        time.sleep(poll_seconds)


def tables(
    deployment: Deployment, session: boto3.Session
) -> list[tuple[str, str, list[tuple[str, str]], list[tuple[str, str]]]]:
    """Each catalogued table: name, location, (column, type) pairs, partition keys."""
    glue = session.client("glue")
    pages = glue.get_paginator("get_tables").paginate(DatabaseName=deployment.database)
    return [
        (
            t["Name"],
            t.get("StorageDescriptor", {}).get("Location", ""),
            [(c["Name"], c["Type"]) for c in t.get("StorageDescriptor", {}).get("Columns", [])],
            [(c["Name"], c["Type"]) for c in t.get("PartitionKeys", [])],
        )
        for page in pages
        for t in page["TableList"]
    ]


def delete_catalog(deployment: Deployment, session: boto3.Session) -> list[str]:
    """Delete the crawler, then the database (and its tables); absent ones are skipped."""
    glue = session.client("glue")
    removed = []
    for kind, getter, deleter, key in (
        ("crawler", glue.get_crawler, glue.delete_crawler, deployment.crawler),
        ("database", glue.get_database, glue.delete_database, deployment.database),
    ):
        try:
            getter(Name=key)
            deleter(Name=key)
            removed.append(f"{kind} {key}")
        except glue.exceptions.EntityNotFoundException:
            pass
    return removed
