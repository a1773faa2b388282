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


def list_folder(spark: SparkSession, uri: str) -> list[tuple[str, bool]]:
    """Every entry directly under ``uri`` as (name, is_file), sorted by name; [] if none.

    Hidden ``_x`` and ``.x`` entries are listed too: the caller decides what is allowed,
    because a file that Spark would skip silently is exactly what must not go unnoticed.
    """
    fs, path = _path(spark, uri)
    if not fs.exists(path):
        return []
    entries = [(s.getPath().getName(), bool(s.isFile())) for s in fs.listStatus(path)]
    return sorted(entries)


def read_head(spark: SparkSession, uri: str, limit: int = 1 << 20) -> bytes:
    """The bytes of a file up to and including its first line feed (at most ``limit``).

    Compressed files (``.gz``) are decompressed with the codec Hadoop picks for their name,
    the one Spark reads them with. Bytes, not text: the caller checks the encoding. A file
    that cannot be read raises OSError with Java's one-line reason.
    """
    fs, path = _path(spark, uri)
    jvm = spark.sparkContext._jvm
    codec = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(
        spark.sparkContext._jsc.hadoopConfiguration()
    ).getCodec(path)
    raw = fs.open(path)
    stream = raw
    head = b""
    try:
        stream = codec.createInputStream(raw) if codec is not None else raw
        while len(head) < limit and b"\n" not in head:
            chunk = bytes(stream.readNBytes(min(8192, limit - len(head))))
            if not chunk:
                break
            head += chunk
    except Exception as error:
        java = getattr(error, "java_exception", None)  # py4j's Py4JJavaError
        if java is None:
            raise
        # A Java IOException (a .gz that is not gzip) as the Python error it is, one line.
        raise OSError(java.toString()) from None
    finally:
        stream.close()
        if stream is not raw:
            raw.close()
    return head[: head.index(b"\n") + 1] if b"\n" in head else head


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
