"""The local stand-in for the Glue crawler and Data Catalog, kept in a DuckDB file in the lake.

``crawl`` scans ``processed/``: one table per folder that carries ``_SUCCESS`` (an unfinished
write is never registered), named after the folder, in database ``rental_marketplace``.
Columns and types come from the Parquet footers, in Glue's type names; ``k=v`` folders become
partition keys. Each table is a DuckDB view over its folder, so the named queries run on it
unchanged; the facts ``glue.get_tables`` would give are kept beside it in ``glue_tables``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from rental_kpis.errors import CatalogError
from rental_kpis.layout import DATABASE, Lake

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


def scan_sql(location: str, partitioned: bool) -> str:
    """DuckDB's read of one table folder (Hive partitions as columns when partitioned)."""
    pattern = f"{location}/**/*.parquet" if partitioned else f"{location}/*.parquet"
    hive = "true" if partitioned else "false"
    return f"read_parquet('{pattern}', hive_partitioning = {hive}, union_by_name = true)"


def inspect_table(con: duckdb.DuckDBPyConnection, folder: Path) -> TableInfo:
    keys = partition_keys_of(folder)
    described = con.execute(f"DESCRIBE SELECT * FROM {scan_sql(str(folder), bool(keys))}")
    types = {name: glue_type(kind) for name, kind, *_ in described.fetchall()}
    return TableInfo(
        name=folder.name,
        location=str(folder),
        columns=[(n, t) for n, t in types.items() if n not in keys],
        partition_keys=[(k, types[k]) for k in keys],
    )


def _ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {DATABASE}")
    con.execute("""CREATE TABLE IF NOT EXISTS main.glue_tables (
        name VARCHAR PRIMARY KEY, location VARCHAR, columns VARCHAR, partition_keys VARCHAR,
        crawled_at VARCHAR)""")


def crawl(lake: Lake) -> CrawlReport:
    """Bring the catalog in line with ``processed/``: add, update, and drop vanished tables."""
    processed = Path(lake.uri("processed"))
    report = CrawlReport()
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with duckdb.connect(str(catalog_path(lake))) as con:
        _ensure_schema(con)
        known = {
            row[0]: (row[1], row[2])
            for row in con.execute(
                "SELECT name, columns, partition_keys FROM main.glue_tables"
            ).fetchall()
        }
        seen = set()
        folders = sorted(processed.iterdir()) if processed.is_dir() else []
        for folder in folders:
            if not folder.is_dir() or folder.name.startswith(("_", ".")):
                continue
            if not (folder / "_SUCCESS").exists():
                report.skipped[folder.name] = "no _SUCCESS: the write did not finish"
                continue
            info = inspect_table(con, folder)
            columns, keys = json.dumps(info.columns), json.dumps(info.partition_keys)
            seen.add(info.name)
            if info.name not in known:
                report.added.append(info.name)
            elif known[info.name] != (columns, keys):
                report.updated.append(info.name)
            else:
                report.unchanged.append(info.name)
                continue
            con.execute(
                f'CREATE OR REPLACE VIEW {DATABASE}."{info.name}" AS SELECT * FROM '
                f"{scan_sql(info.location, bool(info.partition_keys))}"
            )
            con.execute(
                "INSERT OR REPLACE INTO main.glue_tables VALUES (?, ?, ?, ?, ?)",
                [info.name, info.location, columns, keys, now],
            )
        for name in sorted(set(known) - seen):
            con.execute(f'DROP VIEW IF EXISTS {DATABASE}."{name}"')
            con.execute("DELETE FROM main.glue_tables WHERE name = ?", [name])
            report.removed.append(name)
    return report


def get_tables(lake: Lake) -> list[TableInfo]:
    """The catalog's tables, as ``glue.get_tables(DatabaseName='rental_marketplace')`` lists."""
    path = catalog_path(lake)
    if not path.exists():
        return []
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "SELECT name, location, columns, partition_keys, crawled_at "
            "FROM main.glue_tables ORDER BY name"
        ).fetchall()
    return [
        TableInfo(
            name,
            location,
            [tuple(c) for c in json.loads(columns)],
            [tuple(k) for k in json.loads(keys)],
            crawled_at,
        )
        for name, location, columns, keys, crawled_at in rows
    ]


def connect(lake: Lake) -> duckdb.DuckDBPyConnection:
    """A read-only connection on which ``rental_marketplace.<table>`` names resolve."""
    path = catalog_path(lake)
    if not path.exists():
        raise CatalogError(f"no catalog at {path}: run `rental-kpis crawl --lake {lake.root}`")
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    return con
