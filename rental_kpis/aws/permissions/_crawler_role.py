"""The Glue crawler role: a crawl of ``processed/`` (what ``AWSGlueServiceRole`` grants that
such a crawl uses: AWS Glue Developer Guide, "Step 2: Create an IAM role for AWS Glue")."""

from __future__ import annotations

from rental_kpis.aws.names import Deployment
from rental_kpis.aws.permissions._calls import GLUE, PARTITIONED_TABLES, Arns, Call, call_rows
from rental_kpis.layout import TABLES


def crawler_calls(d: Deployment) -> list[Call]:
    """A crawl of the four ``processed/<table>/`` targets into the project database."""
    arn = Arns(d)
    rows = call_rows(GLUE, "the crawler locates the bucket", ["s3:GetBucketLocation"], [arn.bucket])
    for table in TABLES:
        rows += call_rows(
            GLUE,
            "the crawler lists a target",
            ["s3:ListBucket"],
            [arn.bucket],
            {"s3:prefix": f"processed/{table}/"},
        )
        rows += call_rows(
            GLUE,
            "the crawler reads Parquet footers",
            ["s3:GetObject"],
            [arn.obj(f"processed/{table}/part-0.parquet")],
        )
    tables = [arn.table(t) for t in TABLES]
    rows += call_rows(
        GLUE, "the crawler reads the database", ["glue:GetDatabase"], [arn.catalog, arn.database]
    )
    rows += call_rows(
        GLUE,
        "the crawler writes tables",
        ["glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable"],
        [arn.catalog, arn.database, *tables],
    )
    partitioned = [arn.table(t) for t in PARTITIONED_TABLES]
    rows += call_rows(
        GLUE,
        "the crawler writes partitions",
        [
            "glue:GetPartition",
            "glue:GetPartitions",
            "glue:BatchGetPartition",
            "glue:CreatePartition",
            "glue:BatchCreatePartition",
            "glue:UpdatePartition",
            "glue:BatchUpdatePartition",
        ],
        [arn.catalog, arn.database, *partitioned],
    )
    rows += call_rows(
        GLUE, "the crawler's log group", ["logs:CreateLogGroup"], [arn.crawler_log_group]
    )
    # CreateLogStream: authorised on the stream or on its group, whichever AWS names; both pass.
    rows += call_rows(
        GLUE,
        "the crawler's log stream",
        ["logs:CreateLogStream"],
        [arn.crawler_log_group, arn.crawler_log_stream],
    )
    rows += call_rows(GLUE, "the crawler logs", ["logs:PutLogEvents"], [arn.crawler_log_stream])
    return rows
