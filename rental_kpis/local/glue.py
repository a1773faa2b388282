"""The local stand-in for the Glue crawler and Data Catalog, kept in a DuckDB file in the lake.

``crawl`` scans ``processed/``: one table per folder that carries ``_SUCCESS`` (an unfinished
write is never registered), named after the folder, in database ``rental_marketplace``.
Columns and types come from the Parquet footers, in Glue's type names; ``k=v`` folders become
partition keys. The catalog file keeps what ``glue.get_tables`` would give (``glue_tables``),
with each location relative to the lake, so a copied or moved lake reads its own files.

``connect`` is the local Athena: an in-memory DuckDB session on which
``rental_marketplace.<table>`` resolves to the table's files, found under this lake at connect
time. No path is ever written into SQL: the files are handed to DuckDB as pyarrow datasets, so
a quote, a glob character or SQL in a folder name is just a name. Once the tables are in place
the session's own file access is switched off: a query cannot read or write a file by name.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from rental_kpis.errors import CatalogError, LakeUnusable, os_error_text
from rental_kpis.layout import DATABASE, Lake
from rental_kpis.local.lock import lake_lock
from rental_kpis.spark import switch

CATALOG_FILE = "catalog.duckdb"

# DuckDB type → the name Glue (and Athena DDL) uses for it.
GLUE_TYPES = {
    "BIGINT": "bigint", "INTEGER": "int", "SMALLINT": "smallint", "TINYINT": "tinyint",
    "DOUBLE": "double", "FLOAT": "float", "VARCHAR": "string", "BOOLEAN": "boolean",
    "DATE": "date", "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamp",
    "BLOB": "binary",
}  # fmt: skip


def glue_type(duckdb_type: str) -> str:
    if duckdb_type.startswith("DECIMAL"):
        return duckdb_type.lower()
    return GLUE_TYPES.get(duckdb_type, duckdb_type.lower())


@dataclass(frozen=True)
class TableInfo:
    """What ``glue.get_tables`` says of a table: name, location, columns, partition keys."""

    name: str
    location: str
    columns: list[tuple[str, str]]
    partition_keys: list[tuple[str, str]]
    crawled_at: str = ""

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "database": DATABASE,
            "location": self.location,
            "columns": [{"name": n, "type": t} for n, t in self.columns],
            "partition_keys": [{"name": n, "type": t} for n, t in self.partition_keys],
            "crawled_at": self.crawled_at,
        }


@dataclass
class CrawlReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # folder -> why not registered

    @property
    def tables(self) -> list[str]:
        return sorted(self.added + self.updated + self.unchanged)


def catalog_path(lake: Lake) -> Path:
    return Path(lake.root) / CATALOG_FILE


# What Athena accepts as a table name; any other folder of processed/ is skipped, never pasted.
TABLE_NAME = re.compile(r"[a-z0-9][a-z0-9_]{0,254}")
NOT_A_TABLE_NAME = "not a table name (lowercase letters, digits and _ only, as Athena requires)"
NO_PARQUET = "no Parquet file to read the columns from"


def quote_identifier(name: str) -> str:
    """``name`` as a DuckDB identifier, whatever it holds (double quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def relative_location(table: str) -> str:
    """Where a table lives, relative to the lake root: all the catalog ever stores."""
    return f"processed/{table}"


def partition_keys_of(folder: Path) -> list[str]:
    """Hive partition keys from the first chain of ``key=value`` folders below ``folder``."""
    keys: list[str] = []
    current = folder
    while True:
        children = sorted(
            p
            for p in current.iterdir()
            if p.is_dir() and "=" in p.name and not p.name.startswith(("_", "."))
        )
        if not children:
            return keys
        keys.append(children[0].name.split("=", 1)[0])
        current = children[0]


def parquet_files(folder: Path) -> list[Path]:
    """The table's Parquet files: every ``*.parquet`` below ``folder`` outside ``_``/``.`` names."""
    return [
        path
        for path in sorted(folder.rglob("*.parquet"))
        if not any(part.startswith(("_", ".")) for part in path.relative_to(folder).parts)
    ]


def _partition_type(files: list[Path], folder: Path, depth: int) -> str:
    """``bigint`` when every value of the key at ``depth`` is an integer (as DuckDB and the
    Glue crawler type Hive values), else ``string``."""
    values = {path.relative_to(folder).parts[depth].split("=", 1)[-1] for path in files}
    return "bigint" if all(re.fullmatch(r"-?\d+", v) for v in values) else "string"


# Spark writes timestamps as INT96; read them in microseconds, DuckDB's (and Athena's) TIMESTAMP.
PARQUET = ds.ParquetFileFormat(read_options={"coerce_int96_timestamp_unit": "us"})


def table_dataset(folder: Path, partition_keys: list[tuple[str, str]] | None = None) -> ds.Dataset:
    """The table in ``folder`` as a pyarrow dataset: its files by name (no glob), partition
    values parsed from the folders below ``folder`` only (a ``x=1`` folder above the lake is
    not a column). ``partition_keys`` (name, Glue type) default to what the folders show."""
    files = parquet_files(folder)
    if partition_keys is None:
        keys = partition_keys_of(folder)
        partition_keys = [(k, _partition_type(files, folder, i)) for i, k in enumerate(keys)]
    partitioning = None
    if partition_keys:
        schema = pa.schema(
            [(k, pa.int64() if t == "bigint" else pa.string()) for k, t in partition_keys]
        )
        partitioning = ds.partitioning(schema, flavor="hive")
    return ds.dataset(
        [str(f) for f in files],
        format=PARQUET,
        partitioning=partitioning,
        partition_base_dir=str(folder),
    )


def inspect_table(con: duckdb.DuckDBPyConnection, folder: Path) -> TableInfo:
    """Columns and partition keys of the table in ``folder``, in Glue's type names."""
    dataset = table_dataset(folder)
    keys = [field.name for field in dataset.partitioning.schema] if dataset.partitioning else []
    con.register("_inspected", dataset)
    try:
        described = con.execute("DESCRIBE SELECT * FROM _inspected").fetchall()
    finally:
        con.unregister("_inspected")
    types = {name: glue_type(kind) for name, kind, *_ in described}
    return TableInfo(
        name=folder.name,
        location=relative_location(folder.name),
        columns=[(n, t) for n, t in types.items() if n not in keys],
        partition_keys=[(k, types[k]) for k in keys],
    )


def _open(lake: Lake, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """The catalog file; a file DuckDB cannot open (damaged, locked) is one CatalogError."""
    path = catalog_path(lake)
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as error:
        raise CatalogError(
            f"catalog {path} cannot be opened ({str(error).splitlines()[0]}); if it is damaged, "
            f"delete it and run `rental-kpis crawl --lake {lake.root}`"
        ) from error


def _ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    # Catalogs written before locations were relative held views pinned to absolute paths.
    con.execute(f"DROP SCHEMA IF EXISTS {DATABASE} CASCADE")
    con.execute("""CREATE TABLE IF NOT EXISTS main.glue_tables (
        name VARCHAR PRIMARY KEY, location VARCHAR, columns VARCHAR, partition_keys VARCHAR,
        crawled_at VARCHAR)""")


def _check_lake_for_crawl(lake: Lake) -> None:
    """The catalog is written into the lake root: it must exist and take a new file."""
    root = Path(lake.root)
    if not root.is_dir():
        raise LakeUnusable(f"no lake at {root}: run the pipeline first (`rental-kpis run`)")
    try:
        handle, probe = tempfile.mkstemp(prefix=".crawl-check-", dir=root)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise LakeUnusable(f"lake {root} cannot be written: {os_error_text(error)}") from error


def crawl(lake: Lake) -> CrawlReport:
    """Bring the catalog in line with ``processed/``: add, update, and drop vanished tables.

    Finishes first a switch a killed run left half done; raises LakeBusy while a run holds
    the lake (a crawl beside a switch could catalog half a table).
    """
    _check_lake_for_crawl(lake)
    with lake_lock(lake, "crawl"):
        root = switch.local_path(lake.root)
        if root is not None:
            switch.recover(root)
        return _crawl(lake)


def _crawl(lake: Lake) -> CrawlReport:
    processed = Path(lake.uri("processed"))
    report = CrawlReport()
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with _open(lake, read_only=False) as con:
        _ensure_schema(con)
        known = {
            row[0]: tuple(row[1:])
            for row in con.execute(
                "SELECT name, location, columns, partition_keys FROM main.glue_tables"
            ).fetchall()
        }
        seen = set()
        try:
            folders = sorted(processed.iterdir()) if processed.is_dir() else []
            for folder in folders:
                if not folder.is_dir() or folder.name.startswith(("_", ".")):
                    continue
                if not TABLE_NAME.fullmatch(folder.name):
                    report.skipped[folder.name] = NOT_A_TABLE_NAME
                    continue
                if not (folder / "_SUCCESS").exists():
                    report.skipped[folder.name] = "no _SUCCESS: the write did not finish"
                    continue
                if not parquet_files(folder):
                    report.skipped[folder.name] = NO_PARQUET
                    continue
                info = _inspect(con, folder)
                entry = (info.location, json.dumps(info.columns), json.dumps(info.partition_keys))
                seen.add(info.name)
                if info.name not in known:
                    report.added.append(info.name)
                elif known[info.name] != entry:
                    report.updated.append(info.name)
                else:
                    report.unchanged.append(info.name)
                    continue
                con.execute(
                    "INSERT OR REPLACE INTO main.glue_tables VALUES (?, ?, ?, ?, ?)",
                    [info.name, *entry, now],
                )
        except OSError as error:
            raise LakeUnusable(f"crawl of {processed}: {os_error_text(error)}") from error
        for name in sorted(set(known) - seen):
            con.execute("DELETE FROM main.glue_tables WHERE name = ?", [name])
            report.removed.append(name)
    return report


def _inspect(con: duckdb.DuckDBPyConnection, folder: Path) -> TableInfo:
    """inspect_table, with unreadable Parquet (a damaged file) as one CatalogError."""
    try:
        return inspect_table(con, folder)
    except (pa.ArrowException, duckdb.Error) as error:
        raise CatalogError(_unreadable(folder, error)) from error


def _unreadable(folder: Path, error: Exception) -> str:
    """Why the table in ``folder`` cannot be read: its name, its folder and the reader's first
    line (which names the file)."""
    reason = str(error).splitlines()[0].rstrip(".")
    return f"table {folder.name} at {folder}: cannot read its Parquet files: {reason}"


def _catalogued_dataset(lake: Lake, table: TableInfo) -> ds.Dataset:
    """The files of a catalogued table, for a query: a table whose Parquet files are gone, or
    whose first file cannot be read (truncated, damaged), is one CatalogError naming the table
    and its folder, and saying how to make the lake whole again."""
    folder = _table_folder(lake, table)
    again = f"run the pipeline again (`rental-kpis run --lake {lake.root}`)"
    if not parquet_files(folder):
        raise CatalogError(
            f"table {table.name} at {folder}: no Parquet file left since the crawl: {again}, "
            f"or `rental-kpis crawl --lake {lake.root}` to drop it from the catalog"
        )
    try:
        return table_dataset(folder, table.partition_keys)
    except (pa.ArrowException, OSError) as error:
        raise CatalogError(f"{_unreadable(folder, error)}; {again}") from error


def _resolve(lake: Lake, location: str) -> str:
    """A stored location as a path of this lake (older catalogs stored absolute paths)."""
    return location if location.startswith("/") else f"{lake.root}/{location}"


def get_tables(lake: Lake) -> list[TableInfo]:
    """The catalog's tables, as ``glue.get_tables(DatabaseName='rental_marketplace')`` lists;
    locations resolved against this lake."""
    if not catalog_path(lake).exists():
        return []
    with _open(lake, read_only=True) as con:
        try:
            rows = con.execute(
                "SELECT name, location, columns, partition_keys, crawled_at "
                "FROM main.glue_tables ORDER BY name"
            ).fetchall()
        except duckdb.Error as error:
            raise CatalogError(
                f"catalog {catalog_path(lake)} has no table list ({str(error).splitlines()[0]}); "
                f"delete it and run `rental-kpis crawl --lake {lake.root}`"
            ) from error
    return [
        TableInfo(
            name,
            _resolve(lake, location),
            [tuple(c) for c in json.loads(columns)],
            [tuple(k) for k in json.loads(keys)],
            crawled_at,
        )
        for name, location, columns, keys, crawled_at in rows
    ]


def _table_folder(lake: Lake, table: TableInfo) -> Path:
    """The folder a catalog entry may be read from: ``processed/<name>`` of this lake, only."""
    if not TABLE_NAME.fullmatch(table.name) or table.location != lake.processed(table.name):
        raise CatalogError(
            f"catalog entry {table.name!r} points at {table.location}, not at "
            f"{relative_location(table.name)} of this lake: run `rental-kpis crawl --lake "
            f"{lake.root}`"
        )
    return Path(table.location)


def connect(lake: Lake) -> duckdb.DuckDBPyConnection:
    """A session on which ``rental_marketplace.<table>`` names resolve (the local Athena).

    In memory, not on the catalog file: the catalog is only read, its locations resolved
    against this lake now, and each table registered by file list (see the module docstring).
    """
    path = catalog_path(lake)
    if not path.exists():
        raise CatalogError(f"no catalog at {path}: run `rental-kpis crawl --lake {lake.root}`")
    tables = get_tables(lake)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"CREATE SCHEMA {DATABASE}")
        for number, table in enumerate(tables):
            scan = f"_scan_{number}"
            con.register(scan, _catalogued_dataset(lake, table))
            con.execute(
                f"CREATE VIEW {DATABASE}.{quote_identifier(table.name)} AS SELECT * FROM {scan}"
            )
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con
