"""Named queries on Athena through awswrangler, against moto (a real AWS API emulator)."""

from __future__ import annotations

import boto3
import pytest
import requests
from moto import mock_aws

from rental_kpis import queries
from rental_kpis.aws import run_named_query
from rental_kpis.aws.athena import explain_named_query

REGION = "eu-west-1"


@pytest.fixture
def aws(fake_aws_credentials):
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def queue_athena_result(region: str, header: list[str], rows: list[list[str]]) -> None:
    """Queue the next Athena result in moto, the way moto documents (its moto-api)."""
    result = {
        "results": [
            {
                "rows": [{"Data": [{"VarCharValue": v} for v in row]} for row in [header, *rows]],
                "column_info": [
                    {
                        "Name": h,
                        "Label": h,
                        "Type": "varchar",
                        "Nullable": "UNKNOWN",
                        "CatalogName": "hive",
                        "SchemaName": "",
                        "TableName": "",
                        "Precision": 0,
                        "Scale": 0,
                        "CaseSensitive": True,
                    }
                    for h in header
                ],
            }
        ],
        "region": region,
    }
    reply = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/athena/query-results", json=result, timeout=10
    )
    assert reply.status_code == 201


def it_runs_a_named_query_through_awswrangler_with_its_exact_sql(aws):
    aws.client("s3").create_bucket(
        Bucket="rental-kpis-test", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    athena = aws.client("athena")
    athena.create_work_group(
        Name="rental-kpis",
        Configuration={
            "ResultConfiguration": {"OutputLocation": "s3://rental-kpis-test/query-results/"}
        },
    )
    queue_athena_result(REGION, ["vehicle_type", "rental_count"], [["basic", "6677"]])

    frame = run_named_query("most_rented_vehicle_type", workgroup="rental-kpis", boto3_session=aws)

    assert frame.to_dict("records") == [{"vehicle_type": "basic", "rental_count": "6677"}]
    (execution_id,) = athena.list_query_executions(WorkGroup="rental-kpis")["QueryExecutionIds"]
    execution = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
    assert execution["Query"] == queries.load("most_rented_vehicle_type").sql
    assert execution["QueryExecutionContext"]["Database"] == "rental_marketplace"
    assert execution["ResultConfiguration"]["OutputLocation"].startswith(
        "s3://rental-kpis-test/query-results/"
    )


def it_asks_athena_for_a_named_querys_plan_with_explain(aws):
    aws.client("s3").create_bucket(
        Bucket="rental-kpis-test", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    athena = aws.client("athena")
    athena.create_work_group(
        Name="rental-kpis",
        Configuration={
            "ResultConfiguration": {"OutputLocation": "s3://rental-kpis-test/query-results/"}
        },
    )
    plan_rows = [["Fragment 0 [SINGLE]"], ["    Output layout: [city, state]"]]
    queue_athena_result(REGION, ["Query Plan"], plan_rows)

    plan = explain_named_query("revenue_by_city", workgroup="rental-kpis", boto3_session=aws)

    assert plan == "Fragment 0 [SINGLE]\n    Output layout: [city, state]"
    (execution_id,) = athena.list_query_executions(WorkGroup="rental-kpis")["QueryExecutionIds"]
    execution = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
    assert execution["Query"] == "EXPLAIN " + queries.load("revenue_by_city").sql
