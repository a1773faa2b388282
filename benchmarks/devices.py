"""A/B of every execution device of ``spark/execution.py``: the steps with it and without it.

In one local session for one size (``--master``, ``local[*]`` by default; driver 2 GB; the
quick compiler for the sample, as ``rental-kpis run`` chooses it): one warm-up run, then
rounds in which every variant runs once, in turn (each round one variant later), on a fresh
lake: ``all`` (every device on) and each device off. A device is switched off by replacing
its one function in ``execution`` (or ``readers``) with the plain way (the list
``VARIANTS``); the counts of every run must equal those of ``all``. It prints each run's
seconds and, per variant, the median wall and CPU seconds of ``validate_raw`` (CPU: this
process and its children) and the median of the KPI steps, with the gain of the device
(``(off - all) / off``), and the load average.

    python benchmarks/devices.py --size sample --rounds 3
    python benchmarks/devices.py --size 1000000 --rounds 2
    python benchmarks/devices.py --size 1000000 --rounds 1 --master 'local[1]'
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import ensure_data  # noqa: E402 (benchmarks/run.py, beside this file)

from rental_kpis.layout import Lake  # noqa: E402
from rental_kpis.spark import execution, line_reads, readers, steps  # noqa: E402
from rental_kpis.spark.readers import BYTES  # noqa: E402
from rental_kpis.spark.session import build_session  # noqa: E402

KPI_STEPS = ("vehicle_location_metrics", "user_transaction_metrics")


def _sequential(spark: SparkSession, tasks: dict) -> dict:
    return {name: task() for name, task in tasks.items()}


@contextlib.contextmanager
def _not_stored(flagged: DataFrame, dataset: str, lake: Lake) -> Iterator[DataFrame]:
    yield flagged


def _no_shared_keys(raw: DataFrame, dataset: str) -> tuple[None, None]:
    return None, None


def _no_barrier(spread: DataFrame) -> tuple[DataFrame, object]:
    return spread.withColumn(execution._PARTITION, F.lit(0)), F.lit(True)


# variant -> (device it switches off, the attributes of ``execution`` it replaces)
VARIANTS: dict[str, dict[str, object]] = {
    "all": {},
    "run_parallel": {"run_parallel": _sequential},
    "READINGS": {"READINGS": (BYTES,)},
    "_store_small": {"_store_small": _not_stored},
    # not stored, the flagged rows read the shared keys until the step ends: kept till then
    "_store_large": {"_store_large": _not_stored, "Reading.release": lambda self: None},
    "_store_large (checkpoint instead)": {"_store_large": execution._store_small},
    "_shared_keys_first": {"_shared_keys_first": _no_shared_keys},
    "_one_exchange": {"_one_exchange": _no_barrier},
    "_by_key": {"_by_key": lambda keyed: keyed},
    "broadcast": {"broadcast": lambda keys: keys},
    # every file read whole (multiLine, one task each): no pre-scan, no split reads
    "line_readable": {"readers.line_readable": lambda spark, heads: {}},
}
# where a dotted name of ``VARIANTS`` starts, when not in ``execution``
MODULES: dict[str, object] = {"readers": readers}


@contextlib.contextmanager
def switched_off(variant: str) -> Iterator[None]:
    """``execution`` with the replacements of ``variant``, restored afterwards."""
    saved: list[tuple[object, str, object]] = []
    for dotted, value in VARIANTS[variant].items():
        *path, name = dotted.split(".")
        owner: object = MODULES[path.pop(0)] if path and path[0] in MODULES else execution
        for part in path:
            owner = getattr(owner, part)
        saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)


def device_lines() -> dict[str, int]:
    """Lines of each top-level definition of ``execution.py`` (docstrings included), and of
    the whole pre-scan module ``line_reads.py``."""
    tree = ast.parse(Path(execution.__file__).read_text())
    lines = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            lines[node.name] = (node.end_lineno or node.lineno) - node.lineno + 1
    lines["line_reads.py"] = len(Path(line_reads.__file__).read_text().splitlines())
    return lines


def cpu_seconds() -> float:
    """CPU seconds of this process and its children (the JVM, Python workers) so far."""
    processes = [psutil.Process(), *psutil.Process().children(recursive=True)]
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def one_run(spark: SparkSession, raw: Path, variant: str, kpis: bool) -> dict:
    """The steps on a fresh lake whose raw zone links to ``raw``: seconds and counts."""
    with tempfile.TemporaryDirectory(prefix="rental_kpis_devices_") as tmp:
        (Path(tmp) / "raw").mkdir()
        for dataset in raw.iterdir():
            if dataset.is_dir():
                (Path(tmp) / "raw" / dataset.name).symlink_to(dataset)
        lake = Lake(tmp)
        load = os.getloadavg()[0]
        with switched_off(variant):
            started, cpu = time.monotonic(), cpu_seconds()
            counts = steps.validate_raw(spark, lake)["datasets"]
            validate = time.monotonic() - started
            validate_cpu = cpu_seconds() - cpu
            started = time.monotonic()
            if kpis:
                for step in KPI_STEPS:
                    steps.STEP_FUNCTIONS[step](spark, lake)
            kpi_seconds = time.monotonic() - started if kpis else None
        return {
            "validate": validate,
            "validate_cpu": validate_cpu,
            "kpis": kpi_seconds,
            "counts": counts,
            "load": load,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="sample", help="'sample' or a number of rentals")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--master", default="local[*]", help="local[1]: the gain per core")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--kpis", default="all,run_parallel", help="variants that run KPI steps")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "benchmarks" / "data")
    parser.add_argument("--out", type=Path, help="a JSON file for every run")
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    with_kpis = set(args.kpis.split(","))
    print(json.dumps(device_lines()), flush=True)
    results: list[dict] = []
    size = args.size  # one size a process: the JVM's options are those of its first session
    raw, _ = ensure_data(size, args.data_dir)
    os.environ["PYSPARK_SUBMIT_ARGS"] = "--driver-memory 2g pyspark-shell"  # as the run
    spark = build_session(f"devices-{size}", args.master, small_input=size == "sample")
    spark.sparkContext.setLogLevel("ERROR")
    warm = one_run(spark, raw, "all", kpis=True)
    print(f"{size} warm-up: {warm['validate']:.1f} s + {warm['kpis']:.1f} s", flush=True)
    for round_ in range(args.rounds):
        shift = round_ % len(variants)  # each round starts elsewhere: the JIT's warming is spread
        for variant in variants[shift:] + variants[:shift]:
            done = one_run(spark, raw, variant, kpis=variant in with_kpis)
            if done["counts"] != warm["counts"]:
                raise AssertionError(f"{variant}: counts differ from every device on")
            del done["counts"]
            results.append({"size": size, "round": round_, "variant": variant, **done})
            print(f"{size} #{round_ + 1} {variant:<36} {json.dumps(done)}", flush=True)
    spark.stop()
    _summary(size, args.master, results, variants)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _summary(size: str, master: str, runs: list[dict], variants: list[str]) -> None:
    def median(variant: str, key: str) -> float | None:
        values = [r[key] for r in runs if r["variant"] == variant and r[key] is not None]
        return statistics.median(values) if values else None

    base: Callable[[str], float | None] = lambda key: median("all", key)  # noqa: E731
    loads = [r["load"] for r in runs]
    print(f"\n{size} ({master}): load average {min(loads):.1f}-{max(loads):.1f}")
    for variant in variants:
        for key in ("validate", "validate_cpu", "kpis"):
            on, off = base(key), median(variant, key)
            if on is None or off is None:
                continue
            gain = (off - on) / off * 100
            print(
                f"  {variant:<36} {key:<12} off {off:6.1f} s  all {on:6.1f} s  gain {gain:5.1f} %"
            )


if __name__ == "__main__":
    sys.exit(main())
