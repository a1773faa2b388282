"""Reading raw CSV at the edge of the validation step.

Each file's header is read first (one line, not the file), so that a missing dataset or a
missing column fails before any Spark job with a sentence naming dataset, URI and columns,
and so that columns are matched by name even when a file orders them differently.
"""

from __future__ import annotations

import csv

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from rental_kpis.errors import InputError, MissingColumnsError, MissingDatasetError
from rental_kpis.spark import fs
from rental_kpis.spark.schemas import column_names, missing_columns
from rental_kpis.spark.validation import CORRUPT_RECORD


def parse_header(line: str) -> list[str]:
    return [name.strip() for name in next(csv.reader([line]), [])]


def read_header(spark: SparkSession, dataset: str, uri: str) -> list[str]:
    """The common header of every file under ``uri``; errors name what is wrong and where."""
    files = fs.list_data_files(spark, uri)
    if not files:
        raise MissingDatasetError(dataset, uri)
    headers = {path: parse_header(fs.read_first_line(spark, path)) for path in files}
    first = headers[files[0]]
    for path, header in headers.items():
        if header != first:
            raise InputError(
                f"dataset {dataset!r} at {uri}: file {path} has header {','.join(header)} "
                f"but {files[0]} has {','.join(first)}; files of one dataset must agree"
            )
    missing = missing_columns(dataset, first)
    if missing:
        raise MissingColumnsError(dataset, uri, missing, first)
    return first


def read_raw(spark: SparkSession, dataset: str, uri: str) -> DataFrame:
    """All rows of a raw dataset as strings, SPEC columns in SPEC order, plus the text of any
    line that is not a CSV record of the header's width (``_corrupt_record``)."""
    header = read_header(spark, dataset, uri)
    schema = T.StructType(
        [T.StructField(name, T.StringType(), True) for name in header]
        + [T.StructField(CORRUPT_RECORD, T.StringType(), True)]
    )
    df = (
        spark.read.schema(schema)
        .option("header", True)
        .option("enforceSchema", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_RECORD)
        .option("multiLine", False)
        .csv(uri)
    )
    return df.select(*column_names(dataset), CORRUPT_RECORD)
