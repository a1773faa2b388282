"""The split-read setting of ``line_reads`` for a block of a test, restored afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rental_kpis.spark.line_reads import SPLIT_FILES_CONF


@contextmanager
def split_files(spark, mode: str, split_bytes: int | None = None) -> Iterator[None]:
    """``SPLIT_FILES_CONF`` at ``mode``; with ``split_bytes``, files are split every that many
    bytes (so that a line read crosses many split boundaries)."""
    settings = {SPLIT_FILES_CONF: mode}
    if split_bytes:
        settings["spark.sql.files.maxPartitionBytes"] = str(split_bytes)
        settings["spark.sql.files.openCostInBytes"] = "1"
    before = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
