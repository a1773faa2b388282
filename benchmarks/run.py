"""Benchmark: the Spark pipeline against two DuckDB baselines, at several sizes.

For each size it generates data once (cached in benchmarks/data/; ``sample`` is the committed
data/raw), then runs, in turn and each in its own process tree: (a) the three Spark steps
through spark-submit exactly as ``rental-kpis run`` does (one application), (b) the DuckDB
reference ``rental_kpis/devtools/reference.py`` (validation with reject bookkeeping, four
tables), (c) a plain DuckDB SQL of the same validation and tables without the bookkeeping
(``benchmarks/plain_duckdb.py``). For the sample it also times the whole ``rental-kpis run``
(every stage) and starting and stopping a bare local SparkSession, in the same sitting. It
records wall time per step and in total, the CPU seconds of each process tree (contention on
a shared machine stretches wall time more than CPU time), and the peak resident memory of
the whole tree (JVM and Python workers included), sampled with psutil every 100 ms; and the
load average before and after, so that a reader can tell a contended run.

    python benchmarks/run.py --sizes sample,100000,1000000,5000000,10000000 --repeats 3

Writes benchmarks/results/<date>-<host>.json, .md (the table) and .png (time vs rows), and
copies them to latest.* for the README.

With ``--masters`` (a comma-separated list of Spark master URLs, such as
``local[1],local[2]``) it measures how the Spark steps scale with cores instead: only the
Spark run, under each master in turn within each repeat, and the speedup of each master over
the first one, per step and in total, from medians of the same sitting. Writes
``results/scaling-<date>-<host>.{json,md}`` and copies them to ``scaling-latest.*``.
``--spark-conf KEY=VALUE`` (repeatable) adds a Spark setting to every Spark run, for an A/B
of one setting.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SAMPLE = ROOT / "data" / "raw"  # the committed sample: `make sample`, 20,000 rentals
SEED = 42
DEFECT_RATE = 0.0001


# ---------------------------------------------------------------- memory of a process tree


def _tree(pid: int) -> list[psutil.Process]:
    """``pid`` and all its descendants that live now (none when ``pid`` is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _memory(processes: list[psutil.Process], full: bool) -> tuple[int, int]:
    """Summed RSS and PSS of ``processes`` in bytes (a process gone meanwhile counts 0; PSS
    is read only when ``full`` and counts 0 where the system has none, as on macOS)."""
    rss = pss = 0
    for process in processes:
        try:
            if full:
                info = process.memory_full_info()
                pss += getattr(info, "pss", 0)
            else:
                info = process.memory_info()
            rss += info.rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return rss, pss


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, now (RSS summed: pages that
    processes share, such as forked Python workers', count once per process)."""
    return _memory(_tree(pid), full=False)[0]


def tree_pss_bytes(pid: int) -> int:
    """Proportional set size of ``pid`` and its descendants (Linux's ``smaps_rollup``, read
    by psutil; 0 where the system has none): a page shared by n processes counts 1/n in each,
    so the sum is the tree's real share of the machine's memory, which summed RSS overstates."""
    return _memory(_tree(pid), full=True)[1]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_sampled(
    command: list[str], env: dict | None = None
) -> tuple[subprocess.CompletedProcess, float, int, float, int]:
    """Run ``command``; return its result, wall seconds, the peak RSS of its tree, the CPU
    seconds of the tree (every descendant is waited for, so RUSAGE_CHILDREN counts it) and
    the peak PSS of the tree (``tree_pss_bytes``)."""
    started, cpu = time.monotonic(), _children_cpu()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env
    )
    peak = peak_pss = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_pss
        while not done.is_set():
            rss, pss = _memory(_tree(process.pid), full=True)  # one walk for both measures
            peak, peak_pss = max(peak, rss), max(peak_pss, pss)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    done.set()
    sampler.join()
    wall = time.monotonic() - started
    result = subprocess.CompletedProcess(command, process.returncode, out, err)
    return result, wall, peak, _children_cpu() - cpu, peak_pss


def _measured(wall: float, peak: int, cpu: float, peak_pss: int, **more) -> dict:
    """One engine's run as the results record it (memory in MB), from the measures of
    ``run_sampled`` in its order."""
    return {
        "total": wall,
        "cpu": cpu,
        "peak_rss_mb": round(peak / 2**20),
        "peak_pss_mb": round(peak_pss / 2**20),
        **more,
    }


# ---------------------------------------------------------------- the engines

SPARK_CHILD = """
import json, sys
from rental_kpis.local.runner import run_local
from rental_kpis.stages import SPARK_STAGES
result = run_local(sys.argv[1], sys.argv[2], run_id="bench", steps=SPARK_STAGES,
                   driver_memory=sys.argv[3], master=sys.argv[4])
print(json.dumps({s.step: s.seconds for s in result.steps}))
"""

REFERENCE_CHILD = """
import json, sys
from rental_kpis.devtools.reference import run_reference
print(json.dumps(run_reference(sys.argv[1]).seconds))
"""

# A bare local SparkSession, started and stopped: the floor of any Spark run on this machine.
BARE_SESSION_CHILD = """
from pyspark.sql import SparkSession
SparkSession.builder.master("local[*]").getOrCreate().stop()
"""


def _checked(done: subprocess.CompletedProcess, what: str) -> str:
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def last_json(stdout: str, what: str) -> dict:
    """The timings a child prints: the last JSON object in its output.

    DuckDB draws its progress bar on the same stdout (from C, ``\\r`` between frames), and its
    frames can land before and after the child's line: the timings are the last JSON object."""
    for line in reversed(stdout.replace("\r", "\n").splitlines()):
        if "{" in line and line.rstrip().endswith("}"):
            return json.loads(line[line.index("{") :])
    raise RuntimeError(f"{what} printed no timings: {stdout[-500:]!r}")


def spark_conf_env(conf: dict[str, str], folder: Path) -> dict | None:
    """The environment that gives every spark-submit of a child the settings ``conf``: a
    ``spark-defaults.conf`` in ``folder``, named by ``SPARK_CONF_DIR`` (None: no settings)."""
    if not conf:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spark-defaults.conf").write_text(
        "".join(f"{key} {value}\n" for key, value in conf.items())
    )
    return {**os.environ, "SPARK_CONF_DIR": str(folder)}


def run_spark(
    raw: Path, lake: Path, driver_memory: str, master: str = "local[*]", env: dict | None = None
) -> dict:
    shutil.rmtree(lake, ignore_errors=True)
    done, *measures = run_sampled(
        [sys.executable, "-c", SPARK_CHILD, str(raw), str(lake), driver_memory, master], env=env
    )
    steps = last_json(_checked(done, "spark run"), "spark run")
    shutil.rmtree(lake, ignore_errors=True)
    return _measured(*measures, steps={name: round(seconds, 2) for name, seconds in steps.items()})


def run_duckdb(child: list[str], raw: Path, what: str) -> dict:
    done, *measures = run_sampled([sys.executable, *child, str(raw)])
    seconds = last_json(_checked(done, what), what)
    return _measured(*measures, steps={k: round(v, 2) for k, v in seconds.items()})


def run_cli_run(raw: Path, lake: Path) -> dict:
    """The whole ``rental-kpis run`` (raw copy, the Spark application, crawl, queries)."""
    shutil.rmtree(lake, ignore_errors=True)
    done, *measures = run_sampled(
        [
            sys.executable,
            "-m",
            "rental_kpis.cli",
            "run",
            "--raw",
            str(raw),
            "--lake",
            str(lake),
            "--run-id",
            "bench",
        ]
    )
    _checked(done, "rental-kpis run")
    shutil.rmtree(lake, ignore_errors=True)
    return _measured(*measures)


def run_bare_session() -> dict:
    from rental_kpis.spark.session import local_environment

    done, *measures = run_sampled(
        [sys.executable, "-c", BARE_SESSION_CHILD], env=local_environment()
    )
    _checked(done, "bare SparkSession")
    return _measured(*measures)


def ensure_data(size: str, data_dir: Path) -> tuple[Path, int]:
    """The raw folder of ``size`` ("sample" or a number of rentals) and its rental count."""
    if size == "sample":
        manifest = json.loads((SAMPLE / "generation_manifest.json").read_text())
        return SAMPLE, manifest["datasets"]["rental_transactions"]["input_rows"]
    rentals = int(size)
    raw = data_dir / f"raw_{rentals}"
    if not (raw / "generation_manifest.json").exists():
        print(f"generating {rentals:,} rentals into {raw}", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "rental_kpis.cli",
                "generate",
                "--out",
                str(raw),
                "--transactions",
                str(rentals),
                "--seed",
                str(SEED),
                "--defect-rate",
                str(DEFECT_RATE),
            ],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
    return raw, rentals


# ---------------------------------------------------------------- reporting


def _median(runs: list[dict], key: str = "total") -> float:
    return statistics.median(r[key] for r in runs)


def _max_known(values) -> int | None:
    """The largest of ``values`` that is not None (runs from before a column existed)."""
    known = [v for v in values if v is not None]
    return max(known) if known else None


def summarise(runs: list[dict]) -> list[dict]:
    """One row per size: medians over repeats; every ratio from medians of the same sitting."""
    rows = []
    for size in sorted({r["size"] for r in runs}):
        of = {
            engine: [r for r in runs if r["size"] == size and r["engine"] == engine]
            for engine in ("spark", "duckdb", "plain", "run", "bare")
        }
        spark_t, ref_t = _median(of["spark"]), _median(of["duckdb"])
        row = {
            "size": size,
            "label": of["spark"][0].get("label", f"{size:,}"),
            "repeats": len(of["spark"]),
            "spark_seconds": round(spark_t, 1),
            "spark_cpu_seconds": round(_median(of["spark"], "cpu"), 1),
            "spark_steps": {
                name: round(statistics.median(r["steps"][name] for r in of["spark"]), 1)
                for name in of["spark"][0]["steps"]
            },
            "duckdb_seconds": round(ref_t, 1),
            "ratio": round(spark_t / ref_t, 2),
            "spark_rows_per_second": round(size / spark_t),
            "spark_peak_rss_mb": max(r["peak_rss_mb"] for r in of["spark"]),
            "spark_peak_pss_mb": _max_known(r.get("peak_pss_mb") for r in of["spark"]),
            "duckdb_peak_rss_mb": max(r["peak_rss_mb"] for r in of["duckdb"]),
        }
        if of["plain"]:
            plain_t = _median(of["plain"])
            row.update(plain_seconds=round(plain_t, 1), plain_ratio=round(spark_t / plain_t, 2))
        if of["run"] and of["bare"]:
            run_t, bare_t = _median(of["run"]), _median(of["bare"])
            row.update(
                run_seconds=round(run_t, 1),
                bare_session_seconds=round(bare_t, 1),
                run_ratio=round(run_t / bare_t, 2),
            )
        rows.append(row)
    return rows


def merged_runs(earlier: list[dict], now: list[dict]) -> list[dict]:
    """The runs of ``now`` plus those of ``earlier`` at sizes ``now`` did not measure (``--merge``:
    a long size measured alone joins the table; each row's ratios still come from one sitting)."""
    measured = {run["size"] for run in now}
    return [run for run in earlier if run["size"] not in measured] + now


def scaling(summary: list[dict], small: int = 1_000_000, large: int = 10_000_000) -> str | None:
    """The scaling line: time(large) / time(small), or the largest over the smallest size."""
    by_size = {row["size"]: row for row in summary}
    if small in by_size and large in by_size:
        first, last = by_size[small], by_size[large]
    elif len(summary) > 1:
        first, last = summary[0], summary[-1]
    else:
        return None
    return (
        f"Scaling: Spark time({last['size']:,}) / time({first['size']:,}) = "
        f"{last['spark_seconds'] / first['spark_seconds']:.2f} for "
        f"{last['size'] / first['size']:.0f}× the rows."
    )


def markdown(summary: list[dict], meta: dict) -> str:
    load = meta.get("load_average")
    lines = [
        f"Measured {meta['date']} on {meta['host']} ({meta['cpus']} cores, "
        f"{meta['memory_gb']} GB), Spark driver capped at {meta['driver_memory']}; "
        f"medians of {meta['repeats']} runs"
        + (
            f"; load average {load[0]:.1f} before, {load[1]:.1f} after (other work on the "
            "machine stretches wall times: compare the ratios, measured in the same sitting)"
            if load
            else ""
        )
        + ".",
        "",
        "| rentals | Spark total s | validate / vehicle_location / user_transaction s "
        "| Spark CPU s | reference.py s | Spark ÷ reference | plain DuckDB s | Spark ÷ plain "
        "| Spark peak RSS MB | Spark peak PSS MB | reference peak RSS MB |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary:
        steps = " / ".join(f"{v:.1f}" for v in row["spark_steps"].values())
        plain = (
            f"{row['plain_seconds']:.1f} | {row['plain_ratio']:.2f}"
            if "plain_seconds" in row
            else "– | –"
        )
        lines.append(
            f"| {row['label']} | {row['spark_seconds']:.1f} | {steps} "
            f"| {row['spark_cpu_seconds']:.1f} | {row['duckdb_seconds']:.1f} "
            f"| {row['ratio']:.2f} | {plain} "
            f"| {row['spark_peak_rss_mb']:,} | {_mb(row.get('spark_peak_pss_mb'))} "
            f"| {row['duckdb_peak_rss_mb']:,} |"
        )
    for row in summary:
        if "run_ratio" in row:
            lines += [
                "",
                f"{row['label']}: `rental-kpis run` (every stage) "
                f"{row['run_seconds']:.1f} s = {row['run_ratio']:.2f}× starting and "
                "stopping a bare local SparkSession "
                f"({row['bare_session_seconds']:.1f} s), measured in the same sitting.",
            ]
    line = scaling(summary)
    if line:
        lines += ["", line]
    return "\n".join(lines) + "\n"


def _mb(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def chart(summary: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["size"] / 1e6 for r in summary]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.plot(sizes, [r["spark_seconds"] for r in summary], "o-", label="Spark pipeline (3 steps)")
    ax.plot(sizes, [r["duckdb_seconds"] for r in summary], "s-", label="DuckDB reference")
    plain = [r for r in summary if "plain_seconds" in r]
    if plain:
        ax.plot(
            [r["size"] / 1e6 for r in plain],
            [r["plain_seconds"] for r in plain],
            "^-",
            label="plain DuckDB SQL",
        )
    ax.set_title("End-to-end time vs input size")
    ax.set_xlabel("rental transactions (millions)")
    ax.set_ylabel("wall time (seconds)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def measure(size: str, raw: Path, lake: Path, driver_memory: str, env: dict | None = None):
    """One repeat at one size: every engine in turn, in the same sitting."""
    yield "spark", run_spark(raw, lake, driver_memory, env=env)
    yield "duckdb", run_duckdb(["-c", REFERENCE_CHILD], raw, "reference")
    yield "plain", run_duckdb([str(ROOT / "benchmarks" / "plain_duckdb.py")], raw, "plain DuckDB")
    if size == "sample":
        yield "run", run_cli_run(raw, lake)
        yield "bare", run_bare_session()


# ---------------------------------------------------------------- scaling with cores (--masters)


def summarise_scaling(runs: list[dict], masters: list[str]) -> list[dict]:
    """One row per size and master: medians over repeats, and the speedup of that master over
    the first of ``masters`` (its median time ÷ this one's), per step and in total."""
    rows = []
    for size in sorted({r["size"] for r in runs}):
        of = {m: [r for r in runs if r["size"] == size and r["master"] == m] for m in masters}
        base = of[masters[0]]
        for master in masters:
            mine = of[master]
            steps = {
                name: statistics.median(r["steps"][name] for r in mine) for name in mine[0]["steps"]
            }
            base_steps = {name: statistics.median(r["steps"][name] for r in base) for name in steps}
            rows.append(
                {
                    "size": size,
                    "label": mine[0]["label"],
                    "master": master,
                    "repeats": len(mine),
                    "spark_seconds": round(_median(mine), 1),
                    "spark_cpu_seconds": round(_median(mine, "cpu"), 1),
                    "spark_steps": {name: round(v, 1) for name, v in steps.items()},
                    "speedup": round(_median(base) / _median(mine), 2),
                    "step_speedups": {
                        name: round(base_steps[name] / steps[name], 2) for name in steps
                    },
                    "load_average": [
                        round(min(r["load_before"] for r in mine), 1),
                        round(max(r["load_after"] for r in mine), 1),
                    ],
                }
            )
    return rows


def scaling_markdown(summary: list[dict], meta: dict) -> str:
    """The scaling table: per size and master, times, CPU, speedups over the first master."""
    first = meta["masters"][0]
    lines = [
        f"Measured {meta['date']} on {meta['host']} ({meta['cpus']} cores, "
        f"{meta['memory_gb']} GB), Spark driver capped at {meta['driver_memory']}; medians of "
        f"{meta['repeats']} runs, the masters in turn within each repeat"
        + (f"; Spark settings {meta['spark_conf']}" if meta.get("spark_conf") else "")
        + ". Speedup: the time under "
        f"`{first}` ÷ the time under that master, from medians of the same sitting. Load "
        "average: the lowest before and the highest after a run of that master.",
        "",
        "| rentals | master | Spark total s | validate / vehicle_location / user_transaction s "
        "| Spark CPU s | speedup total | speedup validate_raw | load average |",
        "|---|---|---:|---|---:|---:|---:|---|",
    ]
    for row in summary:
        steps = " / ".join(f"{v:.1f}" for v in row["spark_steps"].values())
        load = row["load_average"]
        lines.append(
            f"| {row['label']} | `{row['master']}` | {row['spark_seconds']:.1f} | {steps} "
            f"| {row['spark_cpu_seconds']:.1f} | {row['speedup']:.2f} "
            f"| {row['step_speedups'].get('validate_raw', 0):.2f} "
            f"| {load[0]:.1f} – {load[1]:.1f} |"
        )
    return "\n".join(lines) + "\n"


def run_scaling(args: argparse.Namespace, masters: list[str], env: dict | None) -> int:
    """``--masters``: the Spark run under each master in turn, per size and repeat; writes
    ``results/scaling-<date>-<host>.{json,md}`` and ``scaling-latest.*``."""
    runs = []
    for size in args.sizes.split(","):
        raw, rentals = ensure_data(size, args.data_dir)
        label = f"{rentals:,} (sample)" if size == "sample" else f"{rentals:,}"
        lake = args.data_dir / f"lake_{size}"
        for repeat in range(args.repeats):
            for master in masters:
                before = os.getloadavg()[0]
                result = run_spark(raw, lake, args.driver_memory, master, env)
                runs.append(
                    {
                        "size": rentals,
                        "label": label,
                        "engine": "spark",
                        "master": master,
                        "repeat": repeat,
                        "load_before": before,
                        "load_after": os.getloadavg()[0],
                        **result,
                    }
                )
                print(
                    f"{label:>20} {master:<10} #{repeat + 1}: {result['total']:7.1f} s "
                    f"cpu {result['cpu']:7.1f} s {result['steps']} load {before:.1f} → "
                    f"{os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    meta = _meta(args)
    meta.update(masters=masters, spark_conf=args.spark_conf)
    summary = summarise_scaling(runs, masters)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"scaling-{meta['date']}-{meta['host']}"
    stem.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "summary": summary, "runs": runs}, indent=2) + "\n"
    )
    table = scaling_markdown(summary, meta)
    stem.with_suffix(".md").write_text(table)
    for suffix in (".json", ".md"):
        shutil.copyfile(stem.with_suffix(suffix), RESULTS / f"scaling-latest{suffix}")
    print(table)
    return 0


def _meta(args: argparse.Namespace) -> dict:
    """What every result file records about the sitting."""
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "python": platform.python_version(),
        "driver_memory": args.driver_memory,
        "repeats": args.repeats,
    }


def _setting(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` of ``--spark-conf``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return key.strip(), value.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="sample,100000,1000000,5000000,10000000",
        help="comma-separated: 'sample' (data/raw) or numbers of rentals",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "benchmarks" / "data")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other sizes of results/latest.json in the table",
    )
    parser.add_argument(
        "--masters",
        help="comma-separated Spark master URLs (local[1],local[2]): only the Spark run, "
        "under each in turn, and the speedup over the first (results/scaling-*)",
    )
    parser.add_argument(
        "--spark-conf",
        type=_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting for every Spark run (repeatable)",
    )
    args = parser.parse_args(argv)
    args.spark_conf = dict(args.spark_conf)
    env = spark_conf_env(args.spark_conf, args.data_dir / "spark-conf")
    if args.masters:
        return run_scaling(args, [m.strip() for m in args.masters.split(",") if m.strip()], env)
    runs = []
    load_before = os.getloadavg()[0]
    for size in args.sizes.split(","):
        raw, rentals = ensure_data(size, args.data_dir)
        label = f"{rentals:,} (sample)" if size == "sample" else f"{rentals:,}"
        lake = args.data_dir / f"lake_{size}"
        for repeat in range(args.repeats):
            for engine, result in measure(size, raw, lake, args.driver_memory, env):
                runs.append(
                    {"size": rentals, "label": label, "engine": engine, "repeat": repeat, **result}
                )
                print(
                    f"{label:>20} {engine:<6} #{repeat + 1}: {result['total']:7.1f} s "
                    f"cpu {result['cpu']:7.1f} s {result.get('steps', '')} "
                    f"peak {result['peak_rss_mb']} MB",
                    flush=True,
                )
    meta = {**_meta(args), "load_average": [load_before, os.getloadavg()[0]]}
    if args.spark_conf:
        meta["spark_conf"] = args.spark_conf
    if args.merge and (RESULTS / "latest.json").exists():
        runs = merged_runs(json.loads((RESULTS / "latest.json").read_text())["runs"], runs)
    summary = summarise(runs)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"{meta['date']}-{meta['host']}"
    stem.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "summary": summary, "runs": runs}, indent=2) + "\n"
    )
    table = markdown(summary, meta)
    stem.with_suffix(".md").write_text(table)
    chart(summary, stem.with_suffix(".png"))
    for suffix in (".json", ".md", ".png"):
        shutil.copyfile(stem.with_suffix(suffix), RESULTS / f"latest{suffix}")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
