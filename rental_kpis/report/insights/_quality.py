"""Data quality: rows in and out per dataset, and the rejections by reason."""

from __future__ import annotations

import pandas as pd

from rental_kpis.report.insights._format import human, percent
from rental_kpis.summaries import DatasetCounts  # the step's own reconciliation rule


def quality_table(validation: dict) -> pd.DataFrame:
    """Rows in and out per dataset (from the validate_raw summary) and whether they reconcile:
    every input row is valid, rejected with a reason, or an exact duplicate dropped."""

    rows = []
    for dataset, counts in validation["datasets"].items():
        rows.append(
            {
                "dataset": dataset,
                "rows in": counts["input_rows"],
                "valid": counts["valid_rows"],
                "rejected": counts["rejected_rows"],
                "exact duplicates": counts["deduplicated_rows"],
                "reconciles": DatasetCounts(**counts).reconciles,
            }
        )
    return pd.DataFrame(rows).set_index("dataset")


def rejections(validation: dict) -> pd.DataFrame:
    """One row per (dataset, reason) that occurred, most frequent first."""
    rows = [
        {"dataset": dataset, "reason": reason, "rows": n}
        for dataset, counts in validation["datasets"].items()
        for reason, n in counts["rejected_by_reason"].items()
        if n
    ]
    frame = pd.DataFrame(rows, columns=["dataset", "reason", "rows"])
    ordered = frame.sort_values(["rows", "dataset", "reason"], ascending=[False, True, True])
    return ordered.reset_index(drop=True)


OTHER = "other"


def grouped_rejections(validation: dict, top: int = 4) -> pd.DataFrame:
    """Rejections grouped by dataset (in the summary's order), each dataset's ``top`` reasons
    by rows and the rest summed into one "other" row: a chart stays readable whatever the
    number of reasons."""
    frame = rejections(validation)
    order = list(validation["datasets"])
    parts = []
    for dataset in order:
        own = frame[frame["dataset"] == dataset]
        if own.empty:
            continue
        head, rest = own.head(top), own.iloc[top:]
        if len(rest):
            other = f"{OTHER} ({len(rest)} reasons)"
            head = pd.concat(
                [
                    head,
                    pd.DataFrame(
                        [{"dataset": dataset, "reason": other, "rows": rest["rows"].sum()}]
                    ),
                ]
            )
        parts.append(head)
    if not parts:
        return frame
    return pd.concat(parts).reset_index(drop=True)


def quality_takeaway(validation: dict) -> str:
    table = quality_table(validation)
    rows_in, rejected = table["rows in"].sum(), table["rejected"].sum()
    frame = rejections(validation)
    broken = [human(d) for d, ok in table["reconciles"].items() if not ok]
    if len(frame):
        first = frame.iloc[0]
        common = (
            f" the most common reason is {human(first['reason'])}"
            f" ({human(first['dataset'])}, {first['rows']:,} rows)"
        )
    else:
        common = " no reason occurred"
    closing = (
        "every dataset reconciles (in = valid + rejected + duplicates)."
        if not broken
        else f"{', '.join(broken)} do not reconcile."
    )
    return (
        f"{rejected:,} of {rows_in:,} input rows ({percent(rejected, rows_in)}) were rejected;"
        f"{common}; {closing}"
    )
