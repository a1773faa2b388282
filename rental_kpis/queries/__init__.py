"""Named queries: Athena SQL files; the first line ``-- …`` is the one-line description."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rental_kpis.errors import UnknownName

QUERY_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    sql: str  # Athena (Trino) SQL, exactly as Athena runs it


def load(name: str) -> NamedQuery:
    if name not in names():  # only the named list: never a path the caller chose
        raise UnknownName(f"no named query {name!r}; known: {', '.join(names())}")
    path = QUERY_DIR / f"{name}.sql"
    text = path.read_text()
    first = text.splitlines()[0] if text else ""
    description = first[2:].strip() if first.startswith("--") else ""
    return NamedQuery(name, description, text.strip())


def names() -> list[str]:
    return sorted(p.stem for p in QUERY_DIR.glob("*.sql"))


def all_queries() -> list[NamedQuery]:
    return [load(name) for name in names()]
