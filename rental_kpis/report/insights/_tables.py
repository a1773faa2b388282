"""Tables and sentences as the report shows them, every value escaped."""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class ReportTable:
    """A table as the report shows it: every cell already formatted as text, one alignment per
    column (text left, numbers right). Rendered by our own few lines of HTML, where every
    value is escaped: a location named ``<script>…`` shows as text, never runs."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]
    header: bool = True
    row_headers: bool = False  # the first column labels its row (a <th>)

    def to_html(self) -> str:
        def cell(value: str, i: int) -> str:
            text = html.escape(value)
            if self.row_headers and i == 0:
                return f"<th>{text}</th>"
            if not self.header:  # a label / value table: aligned by its class (``facts``)
                return f"<td>{text}</td>"
            return f'<td class="{"num" if self.numeric[i] else "text"}">{text}</td>'

        head = ""
        if self.header:
            labels = "".join(
                f'<th class="{"num" if self.numeric[i] else "text"}">{html.escape(c)}</th>'
                for i, c in enumerate(self.columns)
            )
            head = f"<thead><tr>{labels}</tr></thead>"
        body = "".join(
            "<tr>" + "".join(cell(v, i) for i, v in enumerate(row)) + "</tr>" for row in self.rows
        )
        kind = "report-table" if self.header else "report-table facts"
        return f'<table class="{kind}">{head}<tbody>{body}</tbody></table>'

    def _repr_html_(self) -> str:
        return self.to_html()

    def texts(self, column: str) -> list[str]:
        i = self.columns.index(column)
        return [row[i] for row in self.rows]


@dataclass(frozen=True)
class Note:
    """A computed sentence shown as a paragraph of the report, escaped like every value."""

    text: str

    def _repr_html_(self) -> str:
        return f'<p class="takeaway">{html.escape(self.text)}</p>'


def facts_table(rows: list[tuple[str, str]]) -> ReportTable:
    """Label / value rows, no header line (a header would only say "value")."""
    return ReportTable(
        columns=("", ""),
        rows=tuple((str(label), str(value)) for label, value in rows),
        numeric=(False, False),
        header=False,
        row_headers=True,
    )


# A cell formatter: the cells are a frame's values, whatever its column holds.
Formatter = Callable[[Any], str]


def table(frame: pd.DataFrame, columns: dict[str, tuple[str, Formatter]]) -> ReportTable:
    """``frame``'s ``columns`` as ``{source: (label, format)}``; a column is right-aligned
    when its source values are numbers."""
    cells = [tuple(fmt(value) for value in frame[source]) for source, (_, fmt) in columns.items()]
    numeric = tuple(
        pd.api.types.is_numeric_dtype(frame[source])
        and not pd.api.types.is_bool_dtype(frame[source])
        for source in columns
    )
    return ReportTable(
        columns=tuple(label for label, _ in columns.values()),
        rows=tuple(zip(*cells, strict=True)) if cells else (),
        numeric=numeric,
    )
