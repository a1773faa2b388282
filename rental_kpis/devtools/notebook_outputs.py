"""The check that notebooks are stored without outputs: ``python -m
rental_kpis.devtools.notebook_outputs NOTEBOOK…`` (the pre-commit hook) exits 1 naming each
notebook that holds an output or an execution count, 0 when none does."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def executed_cells(path: Path) -> list[int]:
    """The indexes of the code cells of ``path`` that hold outputs or an execution count."""
    cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    return [
        index
        for index, cell in enumerate(cells)
        if cell.get("cell_type") == "code"
        and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]


def main(argv: list[str]) -> int:
    found = [(name, executed_cells(Path(name))) for name in argv]
    for name, cells in found:
        if cells:
            print(f"{name}: outputs in cells {cells}: clear them before committing")
    return 1 if any(cells for _, cells in found) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
