"""What notebook 02 shows of Spark's work, shaped for reading: a physical plan one operator per
line, and a few rejected rows per reason. Runs in the notebook's own SparkSession."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from rental_kpis.spark.schemas import REJECTION_REASON, column_names
from rental_kpis.spark.validation import ROW_KEYS

# Physical operators that only wrap another (code generation, its inputs): left out.
_WRAPPERS = ("WholeStageCodegen", "InputAdapter")
_NOISE = re.compile(r"#\d+L?|, \[plan_id=\d+\]")  # expression ids, exchange ids


def plan_outline(frame: DataFrame, width: int = 110, fields: int = 4) -> str:
    """``frame``'s physical plan as a reader follows it: one line per operator, indented as
    Spark's tree, expression ids dropped, at most ``fields`` fields and ``width`` characters a
    line. A cached input is one ``InMemoryTableScan`` line: the plan that filled the cache is
    not repeated (``explain()`` prints it whole, inside every scan of it)."""
    plan = frame._jdf.queryExecution().executedPlan()
    if plan.nodeName() == "AdaptiveSparkPlan":  # before it runs: the plan it starts from
        plan = plan.executedPlan()
    lines: list[str] = []
    _outline(plan, "", "", lines, width, fields)
    return "\n".join(lines)


def _outline(node: Any, lead: str, rest: str, lines: list[str], width: int, fields: int) -> None:
    children = node.children()
    kids = [children.apply(i) for i in range(children.size())]
    if node.nodeName().startswith(_WRAPPERS) and len(kids) == 1:
        _outline(kids[0], lead, rest, lines, width, fields)
        return
    text = _NOISE.sub("", node.simpleString(fields))
    line = lead + text
    lines.append(line if len(line) <= width else line[: width - 1] + "…")
    for i, kid in enumerate(kids):
        last = i == len(kids) - 1
        _outline(kid, rest + ("+- " if last else ":- "), rest + ("   " if last else ":  "),
                 lines, width, fields)  # fmt: skip


def rejection_examples(flagged: DataFrame, dataset: str, per_reason: int = 2) -> pd.DataFrame:
    """The first ``per_reason`` rejected rows of each reason ``flagged`` holds (by the
    dataset's key), every column of the dataset, sorted by reason then key."""
    key = ROW_KEYS[dataset]
    first = Window.partitionBy(REJECTION_REASON).orderBy(F.col(key).asc_nulls_first())
    examples = (
        flagged.where(F.col(REJECTION_REASON).isNotNull())
        .withColumn("_example", F.row_number().over(first))
        .where(F.col("_example") <= per_reason)
        .select(REJECTION_REASON, key, *(c for c in column_names(dataset) if c != key))
        .orderBy(REJECTION_REASON, F.col(key).asc_nulls_first())
    )
    return examples.toPandas()
