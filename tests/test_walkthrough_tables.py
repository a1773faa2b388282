"""The walkthrough's pure helpers that put data into notebook outputs: shown as text, never as
markup."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from nbconvert import HTMLExporter

from rental_kpis.report import notebooks as report
from rental_kpis.walkthrough.tables import markdown_text

HOSTILE = "<img src=x onerror=alert(1)>"


def it_escapes_markup_in_markdown_text():
    assert markdown_text(f"/tmp/{HOSTILE}/a_b*c`d [x](y) | & \\ ~") == (
        "/tmp/&lt;img src=x onerror=alert(1)&gt;/a\\_b\\*c\\`d \\[x\\](y) \\| &amp; \\\\ \\~"
    )


@pytest.mark.slow
def it_shows_a_hostile_lake_path_as_text_in_sprint_1(tmp_path):
    """Notebook 01 says which lake it works on in a Markdown output; a lake folder named like an
    HTML element showed as that element, and ran when the notebook was converted to HTML."""
    lake = tmp_path / HOSTILE
    raw = Path(__file__).resolve().parents[1] / "data" / "raw"
    name = report.NOTEBOOKS[0]
    report.build(lake, tmp_path / "out", raw, notebooks=(name,))
    executed = tmp_path / "out" / f"{name}.ipynb"
    body, _ = HTMLExporter().from_filename(str(executed))
    assert not re.search(r"<img\b[^>]*onerror", body)  # as an element, the handler runs
    assert f"local lake {lake.parent}/&lt;img src=x onerror=alert(1)&gt;" in body


# ---------------------------------------------------------------- what notebook 02 shows


def it_outlines_a_plan_one_operator_a_line_without_the_cached_inputs_plan(spark):
    from pyspark.sql import functions as F

    from rental_kpis.walkthrough.spark_views import plan_outline

    cached = spark.createDataFrame(
        [(i, i % 3, float(i)) for i in range(30)], "id int, t int, v double"
    )
    cached = cached.where("v >= 0").withColumn("double_v", F.col("v") * 2).cache()
    cached.count()
    names = spark.createDataFrame([(i, f"type{i}") for i in range(3)], "t int, name string")
    result = cached.join(names, "t").groupBy("name").agg(F.sum("v").alias("s"))
    outline = plan_outline(result, width=90)
    lines = outline.splitlines()
    assert lines[0].startswith("HashAggregate(keys=[name], functions=[sum(v)])")
    assert any("partial_sum(v)" in line for line in lines)
    assert any(line.lstrip(" :+-").startswith("Exchange hashpartitioning(name") for line in lines)
    assert sum("InMemoryTableScan" in line for line in lines) == 1
    assert "double_v" not in outline.replace("InMemoryTableScan", "")  # the cache's own plan
    assert not re.search(r"#\d", outline) and all(len(line) <= 90 for line in lines)
    cached.unpersist()


def it_shows_the_first_rejected_rows_of_every_reason_with_the_key_first(spark):
    from conftest import raw_frame

    from rental_kpis.spark import validation
    from rental_kpis.walkthrough.spark_views import rejection_examples

    good = {"vehicle_id": "V1", "active": "1", "vehicle_type": "basic"}
    rows = [
        {**good, "vehicle_id": "V3", "vehicle_type": "basic"},
        {**good, "vehicle_id": "V3", "vehicle_type": "premium"},  # conflicting_key, twice
        {**good, "vehicle_id": None},  # missing_key
        {**good, "vehicle_id": "V2"},
    ]
    flagged = validation.flag_dimension(raw_frame(spark, "vehicles", rows), "vehicles")
    shown = rejection_examples(flagged, "vehicles", per_reason=1)
    assert list(shown.columns[:2]) == ["rejection_reason", "vehicle_id"]
    assert shown[["rejection_reason", "vehicle_id"]].values.tolist() == [
        ["conflicting_key", "V3"],
        ["missing_key", None],
    ]


def it_rounds_rates_to_four_places_and_sorts_tables_by_key():
    import pandas as pd

    from rental_kpis.walkthrough.tables import by_key, rounded

    frame = pd.DataFrame(
        {"vehicle_type": ["premium", "basic"], "utilization_rate": [0.08412, 0.07849],
         "total_revenue": [10.456, 2.0]}
    )  # fmt: skip
    shown = rounded(by_key(frame))
    assert shown.values.tolist() == [["basic", 0.0785, 2.0], ["premium", 0.0841, 10.46]]
