"""One line of the doctor's report, and the guard that turns a call AWS refused into a
warning."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | FAIL
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = {OK: "✔", WARN: "!", FAIL: "✘"}[self.status]
        fix = f"  → {self.fix}" if self.fix and self.status != OK else ""
        return f"{mark} {self.name:<22} {self.detail}{fix}"


def guard(name: str, check: Callable[[], Check]) -> Check:
    [checked] = guard_many(name, lambda: [check()])
    return checked


def guard_many(name: str, checks: Callable[[], list[Check]]) -> list[Check]:
    """The checks, or one warning that they could not run when AWS refused a call."""
    try:
        return checks()
    except Exception as error:
        if not type(error).__module__.startswith(("botocore", "boto3")):
            raise
        return [Check(name, WARN, f"could not check: {one_line(error)}", "see docs/aws.md §0")]


def one_line(error: Exception) -> str:
    return " ".join(str(error).split())
