"""The benchmark harness's own arithmetic: medians, ratios, the table, process-tree memory."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

spec = importlib.util.spec_from_file_location(
    "bench_run", Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def spark(size, total, validate):
    return {
        "size": size,
        "engine": "spark",
        "total": total,
        "peak_rss_mb": 100,
        "steps": {"validate_raw": validate},
        "overhead": {"validate_raw": 1.0},
    }


def duck(size, total):
    return {"size": size, "engine": "duckdb", "total": total, "peak_rss_mb": 50, "steps": {}}


def it_takes_medians_and_ratios_per_size():
    runs = [
        spark(10, 9.0, 5.0),
        spark(10, 30.0, 6.0),
        spark(10, 12.0, 7.0),
        duck(10, 2.0),
        duck(10, 4.0),
        duck(10, 3.0),
    ]
    (row,) = bench.summarise(runs)
    assert (row["spark_seconds"], row["duckdb_seconds"], row["ratio"]) == (12.0, 3.0, 4.0)
    assert row["spark_steps"] == {"validate_raw": 6.0}
    assert row["spark_rows_per_second"] == 1  # 10 rows in 12 s, rounded


def it_writes_a_table_with_the_scaling_line():
    runs = [spark(10, 10.0, 5.0), duck(10, 5.0), spark(100, 50.0, 20.0), duck(100, 10.0)]
    text = bench.markdown(
        bench.summarise(runs),
        {"date": "d", "host": "h", "cpus": 2, "memory_gb": 24, "driver_memory": "2g", "repeats": 1},
    )
    assert "| 100 | 50.0 | 20.0 | 1.0 | 10.0 | 5.00 |" in text
    assert "Scaling: Spark time(100) / time(10) = 5.00 for 10× the rows." in text


def it_measures_the_memory_of_a_process_tree():
    rss = bench.tree_rss_bytes(os.getpid())
    assert 10 * 2**20 < rss < 8 * 2**30
