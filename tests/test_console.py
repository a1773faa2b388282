"""What ``rental-kpis run`` and ``status`` print: values from the data and the file system as
text, whatever they hold."""

from __future__ import annotations

import pytest
from rich.console import Console

from rental_kpis.layout import Lake
from rental_kpis.local.results import RunResult, StepResult
from rental_kpis.report import console as printing

# Rich markup that fails (an unmatched closing tag) or restyles, an escape sequence that clears
# the screen, and a right-to-left override before a number.
HOSTILE_NAME = "Lot [/bold] [red]Denver\x1b[2J \u202e#19"


@pytest.fixture
def recorded(monkeypatch) -> Console:
    recorder = Console(record=True, width=400, highlight=False)
    monkeypatch.setattr(printing, "console", recorder)
    return recorder


def it_prints_query_answers_and_paths_as_text(recorded, tmp_path):
    answer = f"location_id=19, location_name={HOSTILE_NAME}, total_revenue=2,660.00"
    lake = Lake(str(tmp_path / "lake[/x]"))
    queries = StepResult("queries", 0.3, {"answers": {"highest_revenue_location": answer}})
    printing.print_run(RunResult("r1", lake, [queries]))
    shown = recorded.export_text()
    assert (
        "  highest_revenue_location: location_id=19, location_name=Lot [/bold] [red]Denver[2J"
        " #19, total_revenue=2,660.00\n"
    ) in shown
    assert f"lake: {tmp_path}/lake[/x]\n" in shown


def it_prints_a_run_error_as_text(recorded):
    record = {"run_id": "r1", "status": "failed", "stages": {}, "error": f"bad {HOSTILE_NAME}"}
    printing.print_history([record])
    assert "  error: bad Lot [/bold] [red]Denver[2J #19\n" in recorded.export_text()
