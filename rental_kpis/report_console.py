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
    table = Table(title="validate_raw: rows in and out")
    for column in ("dataset", "input", "valid", "rejected", "deduplicated", "rejected by reason"):
        table.add_column(
            column, justify="left" if column in ("dataset", "rejected by reason") else "right"
        )
    for name, counts in summary.get("datasets", {}).items():
        reasons = ", ".join(f"{r}={n}" for r, n in counts["rejected_by_reason"].items() if n)
        table.add_row(
            name,
            f"{counts['input_rows']:,}",
            f"{counts['valid_rows']:,}",
            f"{counts['rejected_rows']:,}",
            f"{counts['deduplicated_rows']:,}",
            reasons or "-",
        )
    return table


def print_run(result: RunResult) -> None:
    for step in result.steps:
        if step.step == "validate_raw":
            console.print(validation_table(step.summary))
    timings = ", ".join(f"{s.step} {s.seconds:.1f} s" for s in result.steps)
    console.print(f"run {result.run_id}: {timings}; total {result.seconds:.1f} s")
    console.print(f"lake: {result.lake.root}")
