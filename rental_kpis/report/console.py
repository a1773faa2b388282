"""What ``rental-kpis run`` shows a person: each step as it starts and ends, then a summary."""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.status import Status
from rich.table import Table

from rental_kpis.local.results import RunResult, StepResult
from rental_kpis.stages import stage

console = Console(highlight=False)


def plain(value: object) -> str:
    """A value from the data or the file system as the terminal shows it: as plain text."""
    # Rich markup is escaped; control and format characters (escape sequences, bidi
    # overrides) are removed, so a name cannot rewrite the line or reorder its numbers.
    text = "".join(c for c in str(value) if unicodedata.category(c) not in ("Cc", "Cf"))
    return escape(text)


def step_printer() -> Callable[[str, str, StepResult | None], None]:
    """Progress per stage: a spinner while it runs, then one line with its outcome and time."""
    running: dict[str, tuple[float, Status]] = {}

    def on_step(step: str, event: str, result: StepResult | None) -> None:
        status: Status | None
        if event == "start":
            status = console.status(f"[bold]{step}[/] [dim]{stage(step).description}[/]")
            status.start()
            running[step] = (time.monotonic(), status)
            return
        started, status = running.pop(step, (time.monotonic(), None))
        if status is not None:
            status.stop()
        if event == "done" and result is not None:
            console.print(f"[green]✔[/] {step:<26} {result.seconds:6.1f} s")
        else:
            console.print(f"[red]✘[/] {step:<26} failed after {time.monotonic() - started:.1f} s")

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
            table.add_row(
                plain(name), f"{facts['rows']:,}", f"{facts['seconds']:.1f}", plain(facts["uri"])
            )
    return table


def print_run(result: RunResult) -> None:
    validation = result.summary_of("validate_raw")
    if validation:
        console.print(validation_table(validation))
    if any(step.summary.get("tables") for step in result.steps if step.step != "crawl"):
        console.print(tables_table(result))
    crawl = result.summary_of("crawl")
    if crawl:
        console.print(
            f"catalog rental_marketplace: {', '.join(crawl['catalog_tables']) or 'no tables'}"
        )
    answers = result.summary_of("queries").get("answers", {})
    if answers:
        console.print("[bold]query answers[/]")
        for name, answer in answers.items():
            console.print(f"  {plain(name)}: {plain(answer)}")
    timings = ", ".join(f"{s.step} {s.seconds:.1f} s" for s in result.steps)
    console.print(f"run {result.run_id} succeeded in {result.seconds:.1f} s ({timings})")
    console.print(f"lake: {plain(result.lake.root)}")


def print_history(records: list[dict]) -> None:
    """One block per run, newest first: the whole run id (what ``--run-id`` takes) on its own
    line, never cut to the terminal's width, then its stages and error."""
    colours = {"succeeded": "green", "failed": "red"}
    console.print("[bold]last runs[/] (newest first)")
    for record in records:
        colour = colours.get(record["status"], "yellow")
        console.print(
            f"{record['run_id']}  [{colour}]{record['status']}[/]"
            f"  started {record.get('started_at', '')}",
            soft_wrap=True,
        )
        stages = ", ".join(
            f"{name} {facts.get('seconds', '-')} s"
            if facts["status"] == "succeeded"
            else f"{name} {facts['status']}"
            for name, facts in record.get("stages", {}).items()
        )
        console.print(f"  stages: {stages or 'none'}", soft_wrap=True)
        if record["status"] == "partial":
            console.print("  not every stage has run yet: not a whole run", soft_wrap=True)
        if record.get("error"):
            console.print(f"  [red]error:[/] {plain(record['error'])}", soft_wrap=True)
