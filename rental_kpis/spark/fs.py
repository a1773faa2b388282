"""Small file operations through Hadoop's FileSystem, so that the same driver code works on a
local folder, HDFS and ``s3://`` (EMRFS) without boto3 on the cluster."""

from __future__ import annotations

from pyspark.sql import SparkSession


def _path(spark: SparkSession, uri: str):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def exists(spark: SparkSession, uri: str) -> bool:
    fs, path = _path(spark, uri)
    return bool(fs.exists(path))


def list_data_files(spark: SparkSession, uri: str) -> list[str]:
    """Files directly under ``uri`` that Spark would read (not hidden ``_x`` or ``.x`` files)."""
    fs, path = _path(spark, uri)
    if not fs.exists(path):
        return []
    names = []
    for status in fs.listStatus(path):
        name = status.getPath().getName()
        if status.isFile() and not name.startswith(("_", ".")):
            names.append(status.getPath().toString())
    return sorted(names)


def read_first_line(spark: SparkSession, uri: str) -> str:
    """The first line of a text file, read without scanning the rest (used for CSV headers)."""
    fs, path = _path(spark, uri)
    jvm = spark.sparkContext._jvm
    stream = fs.open(path)
    try:
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        line = reader.readLine()
    finally:
        stream.close()
    return (line or "").lstrip("\ufeff")


def write_text(spark: SparkSession, uri: str, text: str) -> None:
    fs, path = _path(spark, uri)
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def read_text(spark: SparkSession, uri: str) -> str | None:
    fs, path = _path(spark, uri)
    if not fs.exists(path):
        return None
    jvm = spark.sparkContext._jvm
    stream = fs.open(path)
    try:
        scanner = jvm.java.util.Scanner(stream, "UTF-8").useDelimiter("\\A")
        return scanner.next() if scanner.hasNext() else ""
    finally:
        stream.close()


def staging_uri(target: str, token: str) -> str:
    """A sibling of ``target`` under ``_staging/`` (readers, crawlers and Athena skip ``_``)."""
    parent, name = target.rstrip("/").rsplit("/", 1)
    return f"{parent}/_staging/{name}.{token}"


def swap_in(spark: SparkSession, staging: str, target: str) -> None:
    """Replace ``target`` by the complete folder ``staging``: write to a new place, then switch.

    The old folder is moved aside before the new one is moved in, and deleted last, so a
    reader sees the old table or the new one; a step that fails before this call leaves the
    old table untouched.
    """
    fs, new = _path(spark, staging)
    _, live = _path(spark, target)
    jvm = spark.sparkContext._jvm
    old = jvm.org.apache.hadoop.fs.Path(staging + ".old")
    if fs.exists(live) and not fs.rename(live, old):
        raise OSError(f"could not move {target} aside to {old.toString()}")
    if not fs.rename(new, live):
        raise OSError(f"could not move {staging} to {target}")
    fs.delete(old, True)
