"""The named queries on Athena, through awswrangler: the same SQL text the local engine runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rental_kpis import queries
from rental_kpis.aws.names import Deployment
from rental_kpis.errors import QueryFailed
from rental_kpis.layout import DATABASE

if TYPE_CHECKING:
    import boto3
    import pandas as pd


def run_named_query(
    name: str,
    *,
    workgroup: str,
    output_location: str | None = None,
    database: str = DATABASE,
    boto3_session: boto3.Session | None = None,
) -> pd.DataFrame:
    """Run named query ``name`` on Athena; returns its rows.

    Parameters
    ----------
    name: a query of ``rental-kpis query --list``.
    workgroup: the project's Athena workgroup.
    output_location: where Athena keeps the CSV (default: the workgroup's own location).
    database: the Glue database the crawler fills.
    """
    return run_sql(
        queries.load(name).sql,
        label=name,
        workgroup=workgroup,
        output_location=output_location,
        database=database,
        boto3_session=boto3_session,
    )


def run_sql(
    sql: str,
    *,
    label: str,
    workgroup: str,
    output_location: str | None = None,
    database: str = DATABASE,
    boto3_session: boto3.Session | None = None,
) -> pd.DataFrame:
    """Run one Athena statement (plain reads: no CTAS, no UNLOAD); a failure names ``label``."""
    import awswrangler as wr

    try:
        return wr.athena.read_sql_query(
            sql,
            database=database,
            workgroup=workgroup,
            s3_output=output_location,
            ctas_approach=False,
            unload_approach=False,
            boto3_session=boto3_session,
        )
    except wr.exceptions.QueryFailed as error:
        raise QueryFailed(label, str(error)) from error


def workgroup_configuration(deployment: Deployment) -> dict[str, Any]:
    return {
        "ResultConfiguration": {
            "OutputLocation": deployment.lake.uri("query-results") + "/",
            "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
        },
        "EnforceWorkGroupConfiguration": True,
        "PublishCloudWatchMetricsEnabled": True,
    }


def ensure_workgroup(deployment: Deployment, session: boto3.Session) -> list[str]:
    athena = session.client("athena")
    wanted = workgroup_configuration(deployment)
    names = {w["Name"] for w in athena.list_work_groups()["WorkGroups"]}
    current = None
    if deployment.workgroup in names:
        current = athena.get_work_group(WorkGroup=deployment.workgroup)["WorkGroup"][
            "Configuration"
        ]
    if current is None:
        athena.create_work_group(
            Name=deployment.workgroup, Configuration=wanted, Description="rental_kpis named queries"
        )
        return [f"workgroup {deployment.workgroup}"]
    location = current.get("ResultConfiguration", {}).get("OutputLocation")
    if location != wanted["ResultConfiguration"]["OutputLocation"]:
        athena.update_work_group(
            WorkGroup=deployment.workgroup,
            ConfigurationUpdates={
                "ResultConfigurationUpdates": {
                    "OutputLocation": wanted["ResultConfiguration"]["OutputLocation"]
                },
                "EnforceWorkGroupConfiguration": True,
            },
        )
        return [f"workgroup {deployment.workgroup} output location"]
    return []


def delete_workgroup(deployment: Deployment, session: boto3.Session) -> list[str]:
    athena = session.client("athena")
    if deployment.workgroup not in {w["Name"] for w in athena.list_work_groups()["WorkGroups"]}:
        return []
    athena.delete_work_group(WorkGroup=deployment.workgroup, RecursiveDeleteOption=True)
    return [f"workgroup {deployment.workgroup}"]


def explain_named_query(
    name: str,
    *,
    workgroup: str,
    database: str = DATABASE,
    boto3_session: boto3.Session | None = None,
) -> str:
    """The plan Athena makes for named query ``name`` (``EXPLAIN``; it reads no data), as
    the text Athena returns, one line per row.

    Athena SQL reference: "Using EXPLAIN and EXPLAIN ANALYZE in Athena" (EXPLAIN runs no
    query and scans no data)."""
    frame = run_sql(
        "EXPLAIN " + queries.load(name).sql,
        label=name,
        workgroup=workgroup,
        database=database,
        boto3_session=boto3_session,
    )
    return "\n".join(str(value) for value in frame.iloc[:, 0]) if len(frame.columns) else ""
