"""The ``rental-kpis`` command: parse, call the library, print. No pipeline logic lives here."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rental_kpis.errors import Interrupted, RentalKpisError, UsageError, os_error_text
from rental_kpis.project import LAKE_VARIABLE, default_lake

DESCRIPTION = (
    "The rental marketplace's KPI pipeline: validate raw CSV, compute the KPI tables with "
    "Spark, catalog and query them, and report. `rental-kpis COMMAND --help` explains each."
)
DEFAULT_RAW = Path("data/raw")
LAKE_HELP = f"lake folder (default: ${LAKE_VARIABLE} if set, else lake)"


def _generate(args: argparse.Namespace) -> int:
    from rental_kpis.devtools.datagen import generate

    if args.seed < 0:
        raise UsageError(f"--seed must be 0 or more, not {args.seed}")
    try:
        manifest = generate(args.out, args.transactions, args.seed, args.defect_rate)
    except OSError as error:  # the --out folder: not writable, under a file, …
        raise UsageError(f"cannot write {args.out}: {os_error_text(error)}") from error
    for name, counts in manifest["datasets"].items():
        print(
            f"{name:<20} {counts['input_rows']:>12,} rows "
            f"({counts['rejected_rows']:,} defective, {counts['deduplicated_rows']:,} duplicates)"
        )
    print(f"wrote {args.out}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from rental_kpis.local.runner import run_local
    from rental_kpis.report.console import print_run, step_printer

    result = run_local(  # checks the lake (a folder, not a URI) and the run id first
        args.raw,
        args.lake,
        run_id=args.run_id,
        master=args.master,
        driver_memory=args.driver_memory,
        on_step=step_printer(),
    )
    print_run(result)
    return 0


def _class_archive(args: argparse.Namespace) -> int:
    import subprocess
    import tempfile

    from rental_kpis.devtools.datagen import generate
    from rental_kpis.local import class_archive as archive

    try:
        with tempfile.TemporaryDirectory(prefix="rental_kpis_archive_") as tmp:
            raw = Path(tmp) / "raw"
            generate(
                raw, archive.ARCHIVE_RUN_TRANSACTIONS, defect_rate=archive.ARCHIVE_RUN_DEFECT_RATE
            )
            folder, made = archive.build_class_archive(raw)
    except Interrupted:
        raise
    except (archive.ArchiveNotBuilt, RentalKpisError, OSError, subprocess.SubprocessError) as error:
        # only slower without it: say why, and let `make install` go on
        print(f"class archive not built ({error}); local Spark runs start without it")
        return 0
    print(f"{'built' if made else 'already built'}: {folder}")
    return 0


def _crawl(args: argparse.Namespace) -> int:
    from rental_kpis.layout import local_lake
    from rental_kpis.local import glue

    lake = local_lake(args.lake)
    report = glue.crawl(lake)
    for verb in ("added", "updated", "unchanged", "removed"):
        names = getattr(report, verb)
        if names:
            print(f"{verb}: {', '.join(names)}")
    for folder, why in report.skipped.items():
        print(f"skipped {folder}: {why}")
    for table in glue.get_tables(lake):
        keys = ", ".join(f"{n} {t}" for n, t in table.partition_keys) or "-"
        print(f"\n{glue.DATABASE}.{table.name}  location={table.location}  partitions: {keys}")
        for name, kind in table.columns:
            print(f"  {name:<28} {kind}")
    return 0


def _query(args: argparse.Namespace) -> int:
    from rental_kpis import queries
    from rental_kpis.layout import local_lake, new_run_id
    from rental_kpis.local import athena
    from rental_kpis.local.run_ids import kept_query_result

    if args.list or not args.name:
        for query in queries.all_queries():
            print(f"{query.name:<26} {query.description}")
        return 0
    lake = local_lake(args.lake)
    if args.run_id:
        kept = kept_query_result(lake, args.name, args.run_id)
        if kept is not None:  # what that run kept, never rewritten
            sys.stdout.write(kept)
            return 0
    result = athena.run_named_query(lake, args.name, args.run_id or new_run_id())
    sys.stdout.write(result.to_csv())
    return 0


def _status(args: argparse.Namespace) -> int:
    from rental_kpis.layout import local_lake
    from rental_kpis.local.run_records import run_history
    from rental_kpis.report.console import print_history

    if args.last < 1:
        raise UsageError(f"--last must be 1 or more, not {args.last}")
    records = run_history(local_lake(args.lake), args.last)
    if not records:
        print(f"no runs recorded in {args.lake}")
        return 0
    print_history(records)
    return 0 if records[0]["status"] not in ("failed", "interrupted") else 1


def _report(args: argparse.Namespace) -> int:
    from rental_kpis.layout import check_lake_outside_raw, check_run_id, local_lake
    from rental_kpis.local.run_ids import check_run_id_unused
    from rental_kpis.report import notebooks

    # Checked before any notebook runs (and before --out is made): each would fail later.
    lake = Path(local_lake(args.lake).root) if args.backend == "local" else Path(args.lake)
    if args.backend == "local":
        check_lake_outside_raw(local_lake(args.lake), args.raw)
    if args.run_id:
        check_run_id(args.run_id)
        if args.backend == "local":  # the notebooks make this run: a new one
            check_run_id_unused(local_lake(args.lake), args.run_id)

    signals = _ReportSignals()

    def show(notebook: str, seconds: float) -> None:
        print(f"✔ {notebook:<34} {seconds:6.1f} s", flush=True)
        signals.check()  # a signal while a notebook ran: no next notebook

    with signals:
        try:
            result = notebooks.build(
                lake,
                args.out,
                args.raw,
                run_id=args.run_id,
                backend=args.backend,
                bucket=args.bucket,
                region=args.region,
                on_notebook=show,
            )
        except RentalKpisError:
            signals.check()  # the notebook failed because we interrupted it: say so
            raise
    print(f"executed notebooks: {args.out}/ (run {result.run_id})")
    print(f"report: {result.html.resolve()}")
    return 0


class _ReportSignals:
    """SIGTERM, SIGINT, SIGHUP during ``report``: interrupt the running notebook's kernel.

    The kernel (a child process in a session of its own, so it does not get our terminal's
    Ctrl-C) runs the pipeline: SIGINT makes ``run_local`` stop its Spark child, record the
    run as interrupted and release the lake lock; the notebook then fails and the report
    stops with one line. A kernel that has not stopped within ``KERNEL_GRACE`` seconds is
    left to papermill's shutdown (SIGKILL to its group; its Spark child dies with it).
    """

    KERNEL_GRACE = 60

    def __init__(self) -> None:
        self.signum: int | None = None
        self.previous: dict[int, object] = {}

    def __enter__(self) -> _ReportSignals:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                self.previous[signum] = signal.signal(signum, self._handle)
            self.previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, self._give_up)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        signal.alarm(0)
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: object) -> None:
        import contextlib
        import os
        import signal

        if self.signum is not None:
            return
        self.signum = signum
        for pid in _child_pids(os.getpid()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)
        signal.alarm(self.KERNEL_GRACE)

    def _give_up(self, signum: int, frame: object) -> None:
        self.check()

    def check(self) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum, "report")


def _child_pids(parent: int) -> list[int]:
    """The direct children of ``parent`` (the notebook kernel), as psutil lists them on any
    system; none when ``parent`` is gone."""
    import psutil

    try:
        return [child.pid for child in psutil.Process(parent).children()]
    except psutil.NoSuchProcess:
        return []


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rental-kpis", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write synthetic raw CSV (SPEC §1) with defects")
    gen.add_argument("--out", type=Path, required=True, help="folder for <dataset>/*.csv")
    gen.add_argument(
        "--transactions", type=int, default=20_000, help="rental rows (default: 20000)"
    )
    gen.add_argument(
        "--seed", type=int, default=42, help="the same seed writes the same files (default: 42)"
    )
    gen.add_argument(
        "--defect-rate",
        type=float,
        default=0.0,
        help="share of rows per rejection reason, e.g. 0.0003",
    )
    gen.set_defaults(func=_generate)

    run = sub.add_parser("run", help="run the pipeline locally through spark-submit")
    run.add_argument(
        "--raw",
        type=Path,
        default=DEFAULT_RAW,
        help="raw folder with <dataset>/*.csv (default: data/raw)",
    )
    run.add_argument("--lake", default=str(default_lake()), help=LAKE_HELP)
    run.add_argument("--run-id", default=None, help="name of the run (default: a new id)")
    run.add_argument("--master", default="local[*]", help="Spark master (default: local[*])")
    run.add_argument(
        "--driver-memory", default="2g", help="memory of the Spark driver (default: 2g)"
    )
    run.set_defaults(func=_run)

    archive = sub.add_parser(
        "class-archive",
        help="build the JVM class archive that local Spark runs start from (make install does)",
        description="Run the Spark steps once on a small generated input and keep the classes"
        " they load in a class data sharing archive inside this installation: every later"
        " local Spark start maps it instead of loading them."
        " Rebuild after changing Java or pyspark; without it runs are only slower.",
    )
    archive.set_defaults(func=_class_archive)

    crawl = sub.add_parser("crawl", help="catalog processed/ (the local Glue crawler)")
    crawl.add_argument("--lake", default=str(default_lake()), help=LAKE_HELP)
    crawl.set_defaults(func=_crawl)

    query = sub.add_parser("query", help="run a named query; CSV with a header on stdout")
    query.add_argument("name", nargs="?", help="query name (see --list)")
    query.add_argument("--list", action="store_true", help="list the named queries")
    query.add_argument("--lake", default=str(default_lake()), help=LAKE_HELP)
    query.add_argument("--run-id", default=None, help="names query-results/<name>/<run_id>.csv")
    query.set_defaults(func=_query)

    status = sub.add_parser(
        "status",
        help="the last runs on a lake and their outcome",
        description="The last runs on a lake, newest first: whole run id, outcome (succeeded,"
        " partial: not every stage ran yet, failed, running), stages and error.",
    )
    status.add_argument("--lake", default=str(default_lake()), help=LAKE_HELP)
    status.add_argument("--last", type=int, default=10, help="how many runs (default: 10)")
    status.set_defaults(func=_status)

    rep = sub.add_parser(
        "report", help="run the notebooks in order (papermill) and render the HTML report"
    )
    rep.add_argument("--lake", default=str(default_lake()), help=LAKE_HELP)
    rep.add_argument(
        "--out",
        type=Path,
        default=Path("reports"),
        help="folder for the executed notebooks and the HTML (default: reports)",
    )
    rep.add_argument(
        "--raw", type=Path, default=DEFAULT_RAW, help="raw CSV folder to upload (default: data/raw)"
    )
    rep.add_argument("--run-id", default=None, help="the run the notebooks make and report on")
    rep.add_argument(
        "--backend",
        choices=("local", "aws"),
        default="local",
        help="local: a lake folder and spark-submit; aws: S3, EMR, Glue, Athena (default: local)",
    )
    rep.add_argument("--bucket", default="", help="aws backend: the project bucket")
    rep.add_argument(
        "--region", default="", help="aws backend: its region (default: your AWS configuration's)"
    )
    rep.set_defaults(func=_report)

    from rental_kpis.aws.cli import add_parser as add_aws_parser

    add_aws_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Interrupted as error:  # its children are stopped and its run recorded: one line
        print(f"rental-kpis: {error}", file=sys.stderr)
        return 128 + error.signum
    except KeyboardInterrupt:  # Ctrl-C outside a run (a run turns it into Interrupted)
        print("rental-kpis: interrupted by SIGINT", file=sys.stderr)
        return 130
    except RentalKpisError as error:
        print(f"rental-kpis: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # boto3/botocore: no credentials, access denied, …
        if type(error).__module__.startswith(("botocore", "boto3")):
            print(f"rental-kpis: AWS error: {error}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
