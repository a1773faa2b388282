"""Run the named queries on the local catalog: Athena SQL in, rows out, CSV kept like Athena."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

from rental_kpis import queries
from rental_kpis.errors import LakeUnusable, QueryFailed, os_error_text
from rental_kpis.layout import Lake, check_run_id
from rental_kpis.local import glue
from rental_kpis.local.athena_sql import athena_to_duckdb


@dataclass
class QueryResult:
    name: str
    columns: list[str]
    rows: list[tuple]
    output: str | None = None  # where the CSV was written (query-results/<name>/<run_id>.csv)

    def to_csv(self) -> str:
        """The answer as CSV for people (``query-results/``, ``rental-kpis query``): a header,
        then every row, text cells that a spreadsheet would run as a formula neutralised
        (``spreadsheet_safe``). ``rows`` and ``records`` keep the values exact."""
        lines = [csv_record([spreadsheet_safe(c) for c in self.columns])]
        lines += [csv_record([_cell(v) for v in row]) for row in self.rows]
        return "".join(lines)

    def records(self) -> list[dict]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def headline(self) -> str:
        """One line: the first row's values (for the run summary)."""
        if not self.rows:
            return "no rows"
        first = ", ".join(
            f"{c}={_text(v, 2)}" for c, v in zip(self.columns, self.rows[0], strict=True)
        )
        more = f" (+{len(self.rows) - 1} more rows)" if len(self.rows) > 1 else ""
        return first + more


# A cell that starts with one of these is a formula to Excel, LibreOffice and Google Sheets
# (OWASP, "CSV Injection"): "=HYPERLINK(…)", "+cmd|' /C calc'!A0", "@SUM(…)", "-2+3".
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """``text`` as a cell a spreadsheet shows as text: a leading ``'`` before a formula start."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_record(cells: list[str]) -> str:
    """One RFC 4180 record ending in LF; a cell holding , ; " TAB CR or LF is quoted."""
    # Not the csv module: it leaves a lone CR unquoted. ; and TAB split cells in spreadsheets.
    quoted = [
        '"' + cell.replace('"', '""') + '"' if any(c in cell for c in ',;"\t\r\n') else cell
        for cell in cells
    ]
    return ",".join(quoted) + "\n"


def _cell(value: object) -> str:
    """A value as a CSV cell: text ``spreadsheet_safe``, anything else as ``_text`` writes it."""
    return spreadsheet_safe(value) if isinstance(value, str) else _text(value)


def _text(value: object, digits: int | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and digits is not None:
        return f"{value:,.{digits}f}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def run_sql(lake: Lake, name: str, athena_sql: str) -> QueryResult:
    """Run one Athena statement on the local catalog (translated to DuckDB)."""
    with glue.connect(lake) as con:
        try:
            cursor = con.execute(athena_to_duckdb(athena_sql))
        except duckdb.Error as error:
            raise QueryFailed(name, str(error).splitlines()[0]) from error
        columns = [d[0] for d in cursor.description]
        return QueryResult(name, columns, cursor.fetchall())


def run_named_query(
    lake: Lake, name: str, run_id: str | None = None, *, must_keep: bool = False
) -> QueryResult:
    """Run a named query; with a run id, keep its CSV under ``query-results/<name>/``.

    Answering writes nothing: the catalog is only read. A lake the OS will not let us write
    (read-only) still answers; its result is then not kept (``output`` stays None) and the
    lake is left exactly as it was. A lake that can be written keeps it. With ``must_keep``
    (a run's queries stage), and for any write that fails on a writable lake (a full disk),
    a result that cannot be kept is one LakeUnusable.
    """
    query = queries.load(name)
    if run_id:
        check_run_id(run_id)
    result = run_sql(lake, name, query.sql)
    if run_id:
        path = Path(lake.uri("query-results", name, f"{run_id}.csv"))
        if must_keep or can_write_below(path.parent):
            result.output = str(keep_result(result, path))
    return result


def can_write_below(folder: Path) -> bool:
    """Whether the OS lets us write in ``folder``, or, when it does not exist yet, in its
    nearest existing ancestor (where it would be made)."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    return os.access(existing, os.W_OK)


def keep_result(result: QueryResult, path: Path) -> Path:
    """Write the answer's CSV to ``path``; a write the OS refuses is one LakeUnusable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(result.to_csv())
    except OSError as error:
        raise LakeUnusable(
            f"query {result.name}: cannot keep its result in {path}: {os_error_text(error)}"
        ) from error
    return path


def run_all(lake: Lake, run_id: str | None = None) -> dict[str, QueryResult]:
    """Every named query, each result kept under ``run_id`` (LakeUnusable when it cannot be)."""
    return {name: run_named_query(lake, name, run_id, must_keep=True) for name in queries.names()}
