"""What ``rental-kpis run`` shows a person: each step as it starts and ends, then a summary."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from rental_kpis.pipeline import RunResult, StepResult
from rental_kpis.stages import stage

console = Console(highlight=False)


def step_printer() -> Callable[[str, str, StepResult | None], None]:
    started: dict[str, float] = {}

    def on_step(step: str, event: str, result: StepResult | None) -> None:
        if event == "start":
            started[step] = time.monotonic()
            console.print(f"[bold]▶ {step}[/] [dim]{stage(step).description}[/]")
        elif result is not None:
            console.print(f"[green]✔ {step}[/] in {result.seconds:.1f} s")

    return on_step


def validation_table(summary: dict) -> Table:
    """Rows in and out per dataset, then one line per rejection reason that occurred."""
    table = Table(title="validate_raw: rows in and out")
    for column in ("dataset / reason", "input", "valid", "rejected", "dedup"):
        table.add_column(column, justify="left" if column.startswith("dataset") else "right")
    for name, counts in summary.get("datasets", {}).items():
        table.add_row(
            f"[bold]{name}[/]",
            f"{counts['input_rows']:,}",
            f"{counts['valid_rows']:,}",
            f"{counts['rejected_rows']:,}",
            f"{counts['deduplicated_rows']:,}",
        )
        for reason, n in counts["rejected_by_reason"].items():
            if n:
                table.add_row(f"  {reason}", "", "", f"{n:,}", "")
    return table


def tables_table(result: RunResult) -> Table:
    table = Table(title="processed tables")
    for column in ("table", "rows", "write s", "location"):
        table.add_column(column, justify="right" if column in ("rows", "write s") else "left")
    for step in result.steps:
        for name, facts in step.summary.get("tables", {}).items():
            table.add_row(name, f"{facts['rows']:,}", f"{facts['seconds']:.1f}", facts["uri"])
    return table


def print_run(result: RunResult) -> None:
    for step in result.steps:
        if step.step == "validate_raw":
            console.print(validation_table(step.summary))
    if any(step.summary.get("tables") for step in result.steps):
        console.print(tables_table(result))
    timings = ", ".join(f"{s.step} {s.seconds:.1f} s" for s in result.steps)
    console.print(f"run {result.run_id}: {timings}; total {result.seconds:.1f} s")
    console.print(f"lake: {result.lake.root}")
