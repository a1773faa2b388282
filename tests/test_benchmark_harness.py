"""The benchmark harness's own arithmetic (medians, ratios, the table, process-tree memory) and
its plain DuckDB baseline (the same tables as the reference, without the reject bookkeeping)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tables import assert_same_table

from rental_kpis.devtools.datagen import generate
from rental_kpis.devtools.reference import run_reference
from rental_kpis.layout import TABLES

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = load("run")


def spark(size, total, validate, cpu=1.0):
    return {
        "size": size,
        "engine": "spark",
        "total": total,
        "cpu": cpu,
        "peak_rss_mb": 100,
        "steps": {"validate_raw": validate},
    }


def engine(name, size, total):
    return {"size": size, "engine": name, "total": total, "cpu": 1.0, "peak_rss_mb": 50}


def duck(size, total):
    return {**engine("duckdb", size, total), "steps": {}}


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


def it_writes_a_table_with_both_baselines_and_the_scaling_line():
    runs = [
        spark(10, 10.0, 5.0),
        duck(10, 5.0),
        engine("plain", 10, 2.0),
        spark(100, 50.0, 20.0, cpu=70.0),
        duck(100, 10.0),
        engine("plain", 100, 4.0),
    ]
    text = bench.markdown(
        bench.summarise(runs),
        {"date": "d", "host": "h", "cpus": 2, "memory_gb": 24, "driver_memory": "2g", "repeats": 1},
    )
    assert "| 100 | 50.0 | 20.0 | 70.0 | 10.0 | 5.00 | 4.0 | 12.50 | 100 | – | 50 |" in text
    assert "Scaling: Spark time(100) / time(10) = 5.00 for 10× the rows." in text


def it_takes_the_scaling_ratio_from_1m_to_10m_when_both_ran():
    runs = []
    for size, seconds in ((20_000, 10.0), (1_000_000, 40.0), (10_000_000, 320.0)):
        runs += [spark(size, seconds, 1.0), duck(size, 1.0)]
    assert bench.scaling(bench.summarise(runs)) == (
        "Scaling: Spark time(10,000,000) / time(1,000,000) = 8.00 for 10× the rows."
    )


def it_sets_the_sample_run_against_a_bare_session_of_the_same_sitting():
    runs = [
        {**spark(20_012, 12.0, 5.0), "label": "20,012 (sample)"},
        duck(20_012, 1.0),
        engine("run", 20_012, 18.0),
        engine("run", 20_012, 30.0),
        engine("run", 20_012, 20.0),
        engine("bare", 20_012, 4.0),
        engine("bare", 20_012, 5.0),
        engine("bare", 20_012, 6.0),
    ]
    (row,) = bench.summarise(runs)
    assert (row["run_seconds"], row["bare_session_seconds"], row["run_ratio"]) == (20.0, 5.0, 4.0)
    text = bench.markdown([row], {"date": "d", "host": "h", "cpus": 2, "memory_gb": 24,
                                  "driver_memory": "2g", "repeats": 3})  # fmt: skip
    assert "| 20,012 (sample) | 12.0 |" in text
    assert "`rental-kpis run` (every stage) 20.0 s = 4.00× starting and stopping" in text


def it_reads_the_timings_line_past_a_progress_bar_drawn_after_it():
    out = '\r 17% ▕███   ▏ {"validate": 1.5, "total": 2.0}\n\r100% ▕██████▏ \r'
    assert bench.last_json(out, "reference") == {"validate": 1.5, "total": 2.0}
    with pytest.raises(RuntimeError, match="reference printed no timings"):
        bench.last_json("\r100% ▕██████▏ \r", "reference")


def it_counts_the_cpu_seconds_of_a_child_process_tree():
    code = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'sum(range(10**7))'])"
    done, wall, peak, cpu, _ = bench.run_sampled([bench.sys.executable, "-c", code])
    assert done.returncode == 0
    assert 0.05 < cpu <= wall * 2 + 0.5
    assert peak > 0


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("raw")
    generate(folder, 3_000, seed=17, defect_rate=0.003)
    return folder


@pytest.mark.parametrize("table", TABLES)
def it_computes_the_reference_tables_in_the_plain_baseline(raw, table):
    plain = load("plain_duckdb").run_plain(raw)
    assert_same_table(table, plain["tables"][table], run_reference(raw).tables[table], rtol=0.0)


def it_measures_the_memory_of_a_process_tree():
    rss = bench.tree_rss_bytes(os.getpid())
    assert 10 * 2**20 < rss < 8 * 2**30


def it_records_a_sampled_run_in_seconds_and_megabytes():
    code = "import time; block = bytearray(60 * 2**20); time.sleep(1)"
    done, *measures = bench.run_sampled([bench.sys.executable, "-c", code])
    run = bench._measured(*measures, steps={})
    assert done.returncode == 0
    assert 1.0 <= run["total"] < 30 and run["cpu"] < 30
    assert 60 <= run["peak_rss_mb"] < 1000 and 50 <= run["peak_pss_mb"] < 1000


def it_counts_pages_that_forked_processes_share_once_in_the_pss_of_a_tree():
    """A child forked after touching 200 MB shares those pages: summed RSS counts them twice,
    the tree's PSS about once."""
    script = (
        "import os, time\n"
        "block = bytearray(200 * 2**20)\n"
        "for i in range(0, len(block), 4096): block[i] = 1\n"
        "pid = os.fork()\n"
        "time.sleep(3)\n"
        "if pid: os.waitpid(pid, 0)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        time.sleep(1.5)
        rss, pss = bench.tree_rss_bytes(child.pid), bench.tree_pss_bytes(child.pid)
    finally:
        child.wait()
    assert rss > 380 * 2**20
    assert 190 * 2**20 < pss < 300 * 2**20


def it_shows_the_peak_pss_and_a_dash_for_runs_that_did_not_record_it():
    runs = [spark(10, 10.0, 5.0), duck(10, 5.0)]
    assert bench.summarise(runs)[0]["spark_peak_pss_mb"] is None
    runs[0]["peak_pss_mb"] = 1234
    meta = {
        "date": "d",
        "host": "h",
        "cpus": 2,
        "memory_gb": 24,
        "driver_memory": "2g",
        "repeats": 1,
    }
    assert "| 100 | 1,234 | 50 |" in bench.markdown(bench.summarise(runs), meta)


def it_merges_earlier_sizes_into_the_table_and_replaces_the_ones_measured_again():
    earlier = [spark(20_000, 30.0, 20.0), spark(1_000_000, 120.0, 90.0)]
    now = [spark(1_000_000, 100.0, 70.0), spark(10_000_000, 900.0, 600.0)]
    merged = bench.merged_runs(earlier, now)
    assert sorted((r["size"], r["total"]) for r in merged) == [
        (20_000, 30.0),
        (1_000_000, 100.0),
        (10_000_000, 900.0),
    ]


def it_switches_off_only_devices_that_exist_and_restores_them():
    devices = load("devices")
    originals = {}
    for variant, replacements in devices.VARIANTS.items():
        for dotted in replacements:
            *path, name = dotted.split(".")
            owner = devices.MODULES[path.pop(0)] if path and path[0] in devices.MODULES else None
            owner = owner or devices.execution
            for part in path:
                owner = getattr(owner, part)
            assert hasattr(owner, name), f"{variant}: {dotted} is not in the code any more"
            originals[dotted] = (owner, name, getattr(owner, name))
        with devices.switched_off(variant):
            for dotted, value in replacements.items():
                owner, name, _ = originals[dotted]
                assert getattr(owner, name) is value, dotted
    for owner, name, value in originals.values():
        assert getattr(owner, name) is value
    assert set(devices.device_lines()) >= {"run_parallel", "Validation", "line_reads.py"}
