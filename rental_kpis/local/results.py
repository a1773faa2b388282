"""What a local run returns: each stage's wall time and summary, and the callback that hears
of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rental_kpis.layout import Lake


@dataclass
class StepResult:
    step: str
    seconds: float
    summary: dict = field(default_factory=dict)


@dataclass
class RunResult:
    run_id: str
    lake: Lake
    steps: list[StepResult] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    def summary_of(self, step: str) -> dict:
        return next((s.summary for s in self.steps if s.step == step), {})


# (stage, event, result): "start", then "done" with the stage's result, or "failed".
StageEvent = Callable[[str, str, "StepResult | None"], None]
