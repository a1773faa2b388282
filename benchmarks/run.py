"""Benchmark: the Spark pipeline against the DuckDB reference, at several sizes.

For each size it generates data once (cached in benchmarks/data/), then runs, in turn and each
in its own process tree: (a) the three Spark steps through spark-submit exactly as
``rental-kpis run`` does, (b) the DuckDB reference on the same files. It records wall time per
step and in total, rows per second, and the peak resident memory of the whole process tree
(JVM and Python workers included), sampled from /proc every 100 ms.

    python benchmarks/run.py --sizes 1000000,5000000,10000000 --repeats 3

Writes benchmarks/results/<date>-<host>.json, .md (the table) and .png (time vs rows), and
copies them to latest.* for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SEED = 42
DEFECT_RATE = 0.0001


# ---------------------------------------------------------------- memory of a process tree


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, now."""
    tree, total, todo = _children(), 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(tree.get(current, []))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def run_sampled(command: list[str]) -> tuple[subprocess.CompletedProcess, float, int]:
    """Run ``command``; return its result, wall seconds and the peak RSS of its tree."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=ROOT)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss_bytes(process.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    done.set()
    sampler.join()
    wall = time.monotonic() - started
    return subprocess.CompletedProcess(command, process.returncode, out, err), wall, peak


# ---------------------------------------------------------------- the two engines

SPARK_CHILD = """
import json, sys
from rental_kpis.local.runner import run_local
from rental_kpis.stages import SPARK_STAGES
result = run_local(sys.argv[1], sys.argv[2], run_id="bench", steps=SPARK_STAGES,
                   driver_memory=sys.argv[3])
print(json.dumps({s.step: {"wall": s.seconds,
                           "work": s.summary.get("timings_seconds", {}).get("total", 0.0)}
                  for s in result.steps}))
"""

REFERENCE_CHILD = """
import json, sys
from rental_kpis.devtools.reference import run_reference
print(json.dumps(run_reference(sys.argv[1]).seconds))
"""


def run_spark(raw: Path, lake: Path, driver_memory: str) -> dict:
    shutil.rmtree(lake, ignore_errors=True)
    done, wall, peak = run_sampled([sys.executable, "-c", SPARK_CHILD, str(raw), str(lake),
                                    driver_memory])
    if done.returncode != 0:
        raise RuntimeError(f"spark run failed:\n{done.stderr[-3000:]}")
    steps = json.loads(done.stdout.strip().splitlines()[-1])
    shutil.rmtree(lake, ignore_errors=True)
    return {
        "total": wall,
        "steps": {name: round(s["wall"], 2) for name, s in steps.items()},
        "overhead": {name: round(s["wall"] - s["work"], 2) for name, s in steps.items()},
        "peak_rss_mb": round(peak / 2**20),
    }


def run_reference(raw: Path) -> dict:
    done, wall, peak = run_sampled([sys.executable, "-c", REFERENCE_CHILD, str(raw)])
    if done.returncode != 0:
        raise RuntimeError(f"reference run failed:\n{done.stderr[-3000:]}")
    seconds = json.loads(done.stdout.strip().splitlines()[-1])
    return {"total": wall, "steps": {k: round(v, 2) for k, v in seconds.items()},
            "peak_rss_mb": round(peak / 2**20)}


def ensure_data(size: int, data_dir: Path) -> Path:
    raw = data_dir / f"raw_{size}"
    if not (raw / "generation_manifest.json").exists():
        print(f"generating {size:,} rentals into {raw}", flush=True)
        subprocess.run([sys.executable, "-m", "rental_kpis.cli", "generate", "--out", str(raw),
                        "--transactions", str(size), "--seed", str(SEED), "--defect-rate",
                        str(DEFECT_RATE)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return raw


# ---------------------------------------------------------------- reporting


def summarise(runs: list[dict]) -> list[dict]:
    rows = []
    for size in sorted({r["size"] for r in runs}):
        spark = [r for r in runs if r["size"] == size and r["engine"] == "spark"]
        ref = [r for r in runs if r["size"] == size and r["engine"] == "duckdb"]
        spark_t = statistics.median(r["total"] for r in spark)
        ref_t = statistics.median(r["total"] for r in ref)
        steps = {name: statistics.median(r["steps"][name] for r in spark)
                 for name in spark[0]["steps"]}
        overhead = {name: statistics.median(r["overhead"][name] for r in spark)
                    for name in spark[0]["overhead"]}
        rows.append({
            "size": size, "repeats": len(spark), "spark_seconds": round(spark_t, 1),
            "duckdb_seconds": round(ref_t, 1), "ratio": round(spark_t / ref_t, 2),
            "spark_rows_per_second": round(size / spark_t),
            "duckdb_rows_per_second": round(size / ref_t),
            "spark_steps": {k: round(v, 1) for k, v in steps.items()},
            "spark_overhead": {k: round(v, 1) for k, v in overhead.items()},
            "spark_peak_rss_mb": max(r["peak_rss_mb"] for r in spark),
            "duckdb_peak_rss_mb": max(r["peak_rss_mb"] for r in ref),
        })
    return rows


def markdown(summary: list[dict], meta: dict) -> str:
    lines = [
        f"Measured {meta['date']} on {meta['host']} ({meta['cpus']} cores, "
        f"{meta['memory_gb']} GB), Spark driver capped at {meta['driver_memory']}; "
        f"medians of {meta['repeats']} runs.",
        "",
        "| rentals | Spark total s | validate / vehicle_location / user_transaction s "
        "| fixed overhead s (per step) | DuckDB s | Spark ÷ DuckDB | Spark rows/s "
        "| Spark peak RSS MB | DuckDB peak RSS MB |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in summary:
        steps = " / ".join(f"{v:.1f}" for v in row["spark_steps"].values())
        overhead = " / ".join(f"{v:.1f}" for v in row["spark_overhead"].values())
        lines.append(
            f"| {row['size']:,} | {row['spark_seconds']:.1f} | {steps} | {overhead} "
            f"| {row['duckdb_seconds']:.1f} | {row['ratio']:.2f} | "
            f"{row['spark_rows_per_second']:,} | {row['spark_peak_rss_mb']:,} "
            f"| {row['duckdb_peak_rss_mb']:,} |")
    if len(summary) > 1:
        first, last = summary[0], summary[-1]
        lines += ["", f"Scaling: Spark time({last['size']:,}) / time({first['size']:,}) = "
                  f"{last['spark_seconds'] / first['spark_seconds']:.2f} for "
                  f"{last['size'] / first['size']:.0f}× the rows."]
    return "\n".join(lines) + "\n"


def chart(summary: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["size"] / 1e6 for r in summary]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.plot(sizes, [r["spark_seconds"] for r in summary], "o-", label="Spark pipeline (3 steps)")
    ax.plot(sizes, [r["duckdb_seconds"] for r in summary], "s-", label="DuckDB reference")
    ax.set_title("End-to-end time vs input size")
    ax.set_xlabel("rental transactions (millions)")
    ax.set_ylabel("wall time (seconds)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,5000000,10000000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "benchmarks" / "data")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    runs = []
    for size in sizes:
        raw = ensure_data(size, args.data_dir)
        for repeat in range(args.repeats):
            spark = run_spark(raw, args.data_dir / f"lake_{size}", args.driver_memory)
            runs.append({"size": size, "engine": "spark", "repeat": repeat, **spark})
            print(f"{size:>11,} spark  #{repeat + 1}: {spark['total']:7.1f} s "
                  f"{spark['steps']} peak {spark['peak_rss_mb']} MB", flush=True)
            ref = run_reference(raw)
            runs.append({"size": size, "engine": "duckdb", "repeat": repeat, **ref})
            print(f"{size:>11,} duckdb #{repeat + 1}: {ref['total']:7.1f} s "
                  f"peak {ref['peak_rss_mb']} MB", flush=True)
    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "host": socket.gethostname(), "cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "python": platform.python_version(), "driver_memory": args.driver_memory,
        "repeats": args.repeats,
    }
    summary = summarise(runs)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"{meta['date']}-{meta['host']}"
    stem.with_suffix(".json").write_text(json.dumps(
        {"meta": meta, "summary": summary, "runs": runs}, indent=2) + "\n")
    table = markdown(summary, meta)
    stem.with_suffix(".md").write_text(table)
    chart(summary, stem.with_suffix(".png"))
    for suffix in (".json", ".md", ".png"):
        shutil.copyfile(stem.with_suffix(suffix), RESULTS / f"latest{suffix}")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
