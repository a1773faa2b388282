"""Small file operations through Hadoop's FileSystem, so that the same driver code works on a
local folder, HDFS and ``s3://`` (EMRFS) without boto3 on the cluster."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyspark.sql import SparkSession

from rental_kpis.spark import switch


def _path(spark: SparkSession, uri: str):
    # py4j's view of the JVM: untyped, and None only before the context starts.
    jvm: Any = spark.sparkContext._jvm
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


def size(spark: SparkSession, uri: str) -> int:
    """Bytes of the files under ``uri`` (0 when it does not exist)."""
    fs, path = _path(spark, uri)
    return int(fs.getContentSummary(path).getLength()) if fs.exists(path) else 0


def read_head(spark: SparkSession, uri: str, limit: int = 1 << 20) -> bytes:
    """The bytes of a file up to and including its first line feed (at most ``limit``).

    Compressed files (``.gz``) are decompressed with the codec Hadoop picks for their name,
    the one Spark reads them with. Bytes, not text: the caller checks the encoding. A file
    that cannot be read raises OSError with Java's one-line reason.
    """
    fs, path = _path(spark, uri)
    jvm: Any = spark.sparkContext._jvm
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


def delete(spark: SparkSession, uri: str) -> None:
    """Delete ``uri`` and everything under it; nothing to do when it does not exist."""
    fs, path = _path(spark, uri)
    fs.delete(path, True)


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
    jvm: Any = spark.sparkContext._jvm
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


def switch_in(spark: SparkSession, pairs: list[tuple[str, str]], root: str) -> None:
    """Replace each ``target`` by its complete ``staging`` folder, all of them or none.

    A local lake uses ``switch.switch``: a journal first, then an atomic exchange per
    folder (no moment without the table), the old folders deleted last. On S3 / HDFS the
    same journal is written through Hadoop's FileSystem and each folder is moved aside and
    the new one moved in (a rename on S3 is a copy: there is a gap, and the folder is
    incomplete while it is copied; Glue and Athena see the table as it is at that moment).
    A process killed in between leaves the journal; ``recover_switches`` finishes it. The
    journal names each folder relative to ``root`` (``switch.journal_entry``), as the local
    one does, so it means the same folders wherever the lake is, and records the files of
    each staging folder as listed right before the switch (``hadoop_files``): on S3 a killed
    rename leaves both folders partial for a while, and only the files tell which one is
    whole.
    """
    local_root = switch.local_path(root)
    local_pairs = [(switch.local_path(a), switch.local_path(b)) for a, b in pairs]
    if local_root is not None and all(a and b for a, b in local_pairs):
        switch.switch([(str(a), str(b)) for a, b in local_pairs], local_root)
        return
    journal = f"{root.rstrip('/')}/{switch.JOURNAL_DIR}/{secrets.token_hex(6)}.json"
    entries = [
        {
            "staging": switch.journal_entry(staging, root),
            "target": switch.journal_entry(target, root),
            "files": hadoop_files(spark, staging),
        }
        for staging, target in pairs
    ]
    write_text(spark, journal, json.dumps(entries))
    _hadoop_apply(spark, pairs, [entry["files"] is not None for entry in entries])
    fs, path = _path(spark, journal)
    fs.delete(path, False)


def recover_switches(spark: SparkSession, root: str) -> list[str]:
    """Finish the switches a killed step left half done (see ``switch_in``); their targets.

    Every journal is read, its entries resolved under ``root`` and the state of each pair
    told (``_pending``) before any is replayed: an entry outside the lake (``..``, an
    absolute URI of another place: a journal written before entries were relative is taken
    only when all of it lies under ``root``), or a pair neither of whose folders holds the
    files the journal recorded, raises ``switch.JournalRefused`` (one line naming the
    journal) and nothing is touched.
    """
    local_root = switch.local_path(root)
    if local_root is not None:
        return switch.recover(local_root)
    fs, folder = _path(spark, f"{root.rstrip('/')}/{switch.JOURNAL_DIR}")
    if not fs.exists(folder):
        return []
    statuses = sorted(fs.listStatus(folder), key=lambda st: st.getModificationTime())
    journals = [st.getPath() for st in statuses if st.getPath().getName().endswith(".json")]
    replays = []
    for path in journals:
        entries = _journal_pairs(spark, path.toString(), root)
        pending = _pending(spark, path.toString(), entries)
        replays.append((path, [(staging, target) for staging, target, _ in entries], pending))
    finished: list[str] = []
    for path, pairs, pending in replays:
        _hadoop_apply(spark, pairs, pending)
        finished += [b for _, b in pairs]
        fs.delete(path, False)
    return finished


def hadoop_files(spark: SparkSession, uri: str) -> list[list[object]] | None:
    """Every file under the folder ``uri`` as [path relative to it, size], sorted, as Hadoop's
    FileSystem lists them (recursively); None when ``uri`` does not exist. The same form as
    ``switch.Pair.files``, so the two journals describe a folder alike."""
    fs, path = _path(spark, uri)
    if not fs.exists(path):
        return None
    # Paths compared without scheme and authority, which a FileSystem may qualify its own way.
    prefix = fs.makeQualified(path).toUri().getPath().rstrip("/") + "/"
    found: list[list[object]] = []
    listing = fs.listFiles(path, True)
    while listing.hasNext():
        status = listing.next()
        name = status.getPath().toUri().getPath()
        if not name.startswith(prefix):  # not expected of any FileSystem: refuse to guess
            raise OSError(f"{uri} lists {status.getPath().toString()}, which is not under it")
        found.append([name[len(prefix) :], int(status.getLen())])
    return sorted(found)


def _journal_pairs(
    spark: SparkSession, uri: str, root: str
) -> list[tuple[str, str, list[list[object]] | None]]:
    """The (staging, target, recorded files) a Hadoop journal names, each URI resolved under
    ``root``. A journal written before the files were recorded (a list of [staging, target])
    gives None for the files."""
    try:
        entries = json.loads(read_text(spark, uri) or "[]")
        triples = [
            (e["staging"], e["target"], e["files"]) if isinstance(e, dict) else (*e, None)
            for e in entries
        ]
        pairs = [(a, b, _checked_files(files)) for a, b, files in triples]
    except (ValueError, TypeError, KeyError):  # not JSON, not a list of switches
        raise switch.JournalRefused(
            f"switch journal {uri} holds no list of switches, so it cannot be replayed; "
            f"nothing was changed: delete it, then run the pipeline again"
        ) from None
    return [
        (
            switch.resolve_entry(a, root, uri, staging=True),
            switch.resolve_entry(b, root, uri),
            files,
        )
        for a, b, files in pairs
    ]


def _checked_files(files: object) -> list[list[object]] | None:
    """A journal's recorded files as ``hadoop_files`` gives them; TypeError for anything
    else (then the journal is refused as unreadable)."""
    if files is None:
        return None
    if not isinstance(files, list) or not all(
        isinstance(f, list)
        and len(f) == 2
        and isinstance(f[0], str)
        and isinstance(f[1], int)
        and not isinstance(f[1], bool)
        for f in files
    ):
        raise TypeError("not a list of [name, size]")
    return sorted(files)


def _pending(
    spark: SparkSession,
    journal: str,
    entries: list[tuple[str, str, list[list[object]] | None]],
) -> list[bool]:
    """For each (staging, target, files) of ``journal``: whether its move is still to do.

    On S3 a folder is renamed by copying each object, then deleting each source object, so a
    step killed in a rename leaves a partial target (killed while copying) or a partial
    staging folder (killed while deleting). What is where decides, by the files recorded:

    - staging holds exactly the recorded files (names and sizes): (re)do the move, which is
      right whether or not the target got a complete copy already;
    - else the target holds exactly them: done (leftovers of staging and ``.old`` go);
    - else neither is whole: ``switch.JournalRefused`` naming ``journal``, nothing touched.

    A journal written before files were recorded (files None): the move is to do while the
    staging folder exists, as that journal's code did.
    """
    pending = []
    for staging, target, files in entries:
        if files is None:
            pending.append(exists(spark, staging))
        elif hadoop_files(spark, staging) == files:
            pending.append(True)
        elif hadoop_files(spark, target) == files:
            pending.append(False)
        else:
            raise switch.JournalRefused(
                f"switch journal {journal} cannot be replayed: neither {target} nor {staging} "
                f"holds all {len(files)} files it recorded (a step killed while moving the "
                f"table); nothing was changed: delete {journal}, then run the pipeline again "
                f"to rewrite the tables it names"
            )
    return pending


def _hadoop_apply(spark: SparkSession, pairs: list[tuple[str, str]], pending: list[bool]) -> None:
    """Move each ``pending`` staging folder in (the live one aside first), then delete what is
    left of every staging folder and of its ``.old`` aside folder. The caller decides what is
    pending (``_pending``): a pair not pending has switched."""
    jvm: Any = spark.sparkContext._jvm
    for (staging, target), todo in zip(pairs, pending):
        if not todo:
            continue
        fs, new = _path(spark, staging)
        _, live = _path(spark, target)
        old = jvm.org.apache.hadoop.fs.Path(staging + ".old")
        if fs.exists(live):
            fs.delete(old, True)
            if not fs.rename(live, old):
                raise OSError(f"could not move {target} aside to {old.toString()}")
        if not fs.rename(new, live):
            raise OSError(f"could not move {staging} to {target}")
    for staging, _ in pairs:
        delete(spark, staging)  # a switched pair's partial leftover (killed while deleting)
        delete(spark, staging + ".old")


class Switch:
    """The tables of one step, collected as they are written and switched in together."""

    def __init__(self, spark: SparkSession, root: str) -> None:
        self.spark, self.root = spark, root
        self.pairs: list[tuple[str, str]] = []
        self._lock = threading.Lock()  # tables written from parallel tasks (execution.run_parallel)

    def add(self, staging: str, target: str) -> None:
        with self._lock:
            self.pairs.append((staging, target))

    def commit(self) -> None:
        switch_in(self.spark, self.pairs, self.root)

    def discard(self) -> None:
        for staging, _ in self.pairs:
            delete(self.spark, staging)


@contextmanager
def switch_together(spark: SparkSession, root: str) -> Iterator[Switch]:
    """Collect a step's tables (``Switch.add``); switch them in together when the block ends
    without an error, delete the staging folders when it raises (the live tables stay)."""
    together = Switch(spark, root)
    try:
        yield together
    except BaseException:
        together.discard()
        raise
    together.commit()


def swap_in(spark: SparkSession, staging: str, target: str) -> None:
    """Replace one table: ``switch_in`` with a single pair (the root: the zone's parent)."""
    root = target.rstrip("/").rsplit("/", 2)[0]
    switch_in(spark, [(staging, target)], root)
