"""What a step reports about its rows, as plain data (standard library only).

The validation step fills ``DatasetCounts`` on the cluster; the report and the console read the
same rule back from the step's JSON summary, so reconciliation is written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DatasetCounts:
    """Row accounting of one dataset: input = valid + rejected + deduplicated."""

    input_rows: int = 0
    valid_rows: int = 0
    rejected_rows: int = 0
    deduplicated_rows: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def reconciles(self) -> bool:
        return self.input_rows == self.valid_rows + self.rejected_rows + self.deduplicated_rows

    def as_dict(self) -> dict:
        return {
            "input_rows": self.input_rows,
            "valid_rows": self.valid_rows,
            "rejected_rows": self.rejected_rows,
            "deduplicated_rows": self.deduplicated_rows,
            "rejected_by_reason": dict(self.rejected_by_reason),
        }
