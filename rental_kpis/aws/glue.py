"""The Glue database and crawler over ``processed/``: create, crawl and wait, list, delete."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import boto3

from rental_kpis.aws.iam import Propagation
from rental_kpis.aws.names import PROJECT_TAG, Deployment
from rental_kpis.errors import CrawlFailed

CRAWLER_LOG_GROUP = "/aws-glue/crawlers"


def crawler_spec(deployment: Deployment) -> dict[str, Any]:
    return {
        "Name": deployment.crawler,
        "Role": deployment.role_arn(deployment.glue_crawler_role),
        "DatabaseName": deployment.database,
        "Targets": {"S3Targets": [{"Path": p} for p in deployment.processed_prefixes]},
        "SchemaChangePolicy": {"UpdateBehavior": "UPDATE_IN_DATABASE", "DeleteBehavior": "LOG"},
        "RecrawlPolicy": {"RecrawlBehavior": "CRAWL_EVERYTHING"},
    }


def ensure_catalog(
    deployment: Deployment, session: boto3.Session, propagation: Propagation | None = None
) -> list[str]:
    """Database and crawler. Glue checks that it can assume the crawler's role when the crawler
    is created or updated, so both calls wait out IAM propagation (``Propagation.retry``)."""
    propagation = propagation or Propagation()
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
        tags = {PROJECT_TAG[0]: PROJECT_TAG[1]}
        propagation.retry(
            lambda: glue.create_crawler(**spec, Tags=tags), f"creating crawler {spec['Name']}"
        )
        return [*changed, f"crawler {deployment.crawler}"]
    same = (
        current.get("Role") in (spec["Role"], deployment.glue_crawler_role)
        and current.get("DatabaseName") == spec["DatabaseName"]
        and [t["Path"] for t in current["Targets"].get("S3Targets", [])]
        == deployment.processed_prefixes
    )
    if not same:
        propagation.retry(lambda: glue.update_crawler(**spec), f"updating crawler {spec['Name']}")
        changed.append(f"crawler {deployment.crawler} targets")
    return changed


def start_crawl_and_wait(
    deployment: Deployment,
    session: boto3.Session,
    *,
    poll_seconds: float = 15.0,
    timeout_seconds: float = 900.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Start the crawler, wait until it is READY again, and check that *this* crawl ran and
    succeeded: ``LastCrawl.StartTime`` after the request (a READY crawler whose last crawl is
    older has not run ours yet, or an earlier success would be taken for this one) and
    ``LastCrawl.Status`` SUCCEEDED. Returns ``LastCrawl``; raises ``CrawlFailed`` with Glue's
    message and where the crawler's log is otherwise."""
    glue = session.client("glue")
    # One second of slack: Glue's timestamps and this machine's clock are not the same clock.
    requested = datetime.now(timezone.utc).timestamp() - 1.0
    glue.start_crawler(Name=deployment.crawler)
    started = time.monotonic()
    while True:
        crawler = glue.get_crawler(Name=deployment.crawler)["Crawler"]
        last = crawler.get("LastCrawl") or {}
        begun = last.get("StartTime")
        ours = begun is not None and _epoch(begun) >= requested
        if crawler["State"] == "READY" and ours:
            break
        if time.monotonic() - started > timeout_seconds:
            what = "has not started the crawl" if not ours else "is still running"
            raise CrawlFailed(
                f"crawler {deployment.crawler} {what} after {timeout_seconds:.0f} s "
                f"(state {crawler['State']}); {crawler_log_hint(deployment)}"
            )
        sleep(poll_seconds)
    if last.get("Status") != "SUCCEEDED":
        message = last.get("ErrorMessage") or "no error message"
        raise CrawlFailed(
            f"crawl of {deployment.crawler} ended {last.get('Status')}: {message}; "
            f"{crawler_log_hint(deployment)}"
        )
    return last


def crawler_log_hint(deployment: Deployment) -> str:
    return (
        f"its log: CloudWatch Logs group {CRAWLER_LOG_GROUP}, stream {deployment.crawler} "
        f"(region {deployment.region})"
    )


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value)).timestamp()


def delete_crawler_logs(deployment: Deployment, session: boto3.Session) -> list[str]:
    """The crawler's log streams in ``/aws-glue/crawlers`` (the group is shared by every
    crawler of the account and stays)."""
    logs = session.client("logs")
    try:
        streams = logs.describe_log_streams(
            logGroupName=CRAWLER_LOG_GROUP, logStreamNamePrefix=deployment.crawler
        )["logStreams"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    removed = []
    for stream in streams:
        logs.delete_log_stream(
            logGroupName=CRAWLER_LOG_GROUP, logStreamName=stream["logStreamName"]
        )
        removed.append(f"crawler log stream {CRAWLER_LOG_GROUP}/{stream['logStreamName']}")
    return removed


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
