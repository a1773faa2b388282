"""``rental-kpis aws …``: parse, call ``rental_kpis.aws.deploy``, print."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rental_kpis.layout import new_run_id


def _setup(args: argparse.Namespace) -> int:
    from rental_kpis.aws import deploy
    from rental_kpis.aws.emr import ClusterSpec

    spec = ClusterSpec(
        core_instance_count=args.core_instances,
        master_instance_type=args.instance_type,
        core_instance_type=args.instance_type,
        idle_timeout_seconds=args.idle_timeout,
    )
    report = deploy.setup(
        args.bucket, args.region, raw=args.raw, notify_email=args.notify_email, spec=spec
    )
    d = report.deployment
    for item in report.changed:
        print(f"set up   {item}")
    print(f"uploaded {len(report.uploaded)} file(s)" + (":" if report.uploaded else ""))
    for key in report.uploaded:
        print(f"  s3://{d.bucket}/{key}")
    if not report.changed and not report.uploaded:
        print("nothing to change: everything is already in place")
    print(f"\nstate machine {d.state_machine_arn}")
    print(f"next: rental-kpis aws run --bucket {d.bucket} --region {d.region}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from rental_kpis.aws import deploy

    session = deploy.session_for(args.region)
    d = deploy.deployment_for(args.bucket, args.region, session)
    run_id = args.run_id or new_run_id()
    arn = deploy.start_run(d, session, run_id)
    print(f"run {run_id} started: {arn}")

    def show(state: str, elapsed: float) -> None:
        print(f"  {elapsed:8.1f} s  {state}", flush=True)

    outcome = deploy.follow_run(
        arn, session, poll_seconds=args.poll_seconds, timeout_seconds=args.timeout, on_state=show
    )
    print(f"run {run_id}: {outcome.status}")
    if outcome.status == "SUCCEEDED":
        print(f"KPI tables:    s3://{d.bucket}/processed/  (Glue database {d.database})")
        print(f"query results: s3://{d.bucket}/query-results/  (Athena workgroup {d.workgroup})")
        print(f"run summaries: s3://{d.bucket}/runs/{run_id}/")
        return 0
    if outcome.status == "RUNNING":
        print(f"still running after {args.timeout:.0f} s; it goes on without this command:")
        print(f"  aws stepfunctions describe-execution --execution-arn {arn}")
        return 1
    print(f"error: {outcome.error}\ncause: {outcome.cause}", file=sys.stderr)
    print(f"EMR logs: s3://{d.bucket}/emr-logs/", file=sys.stderr)
    return 1


def _teardown(args: argparse.Namespace) -> int:
    from rental_kpis.aws import deploy

    removed = deploy.teardown(args.bucket, args.region, delete_data=args.delete_data)
    for item in removed:
        print(f"removed {item}")
    if not removed:
        print("nothing to remove")
    if not args.delete_data:
        print(f"kept bucket {args.bucket} (its data); add --delete-data to remove it too")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    aws = sub.add_parser("aws", help="the AWS backend: setup, run, teardown")
    verbs = aws.add_subparsers(dest="aws_command", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--bucket", required=True, help="the project's S3 bucket")
        parser.add_argument("--region", required=True, help="AWS region, e.g. eu-west-1")

    setup = verbs.add_parser("setup", help="create everything (idempotent)")
    common(setup)
    setup.add_argument("--notify-email", default=None, help="subscribe this e-mail to notices")
    setup.add_argument("--raw", type=Path, default=Path("data/raw"), help="raw CSV folder")
    setup.add_argument("--instance-type", default="m5.xlarge", help="EMR node type")
    setup.add_argument("--core-instances", type=int, default=2, help="EMR core nodes")
    setup.add_argument("--idle-timeout", type=int, default=3600, help="seconds (EMR auto-stop)")
    setup.set_defaults(func=_setup)

    run = verbs.add_parser("run", help="start the state machine and follow it")
    common(run)
    run.add_argument("--run-id", default=None, help="execution name (default: a new id)")
    run.add_argument("--poll-seconds", type=float, default=10.0, help="seconds between checks")
    run.add_argument("--timeout", type=float, default=4 * 3600, help="seconds to follow")
    run.set_defaults(func=_run)

    teardown = verbs.add_parser("teardown", help="remove everything setup made")
    common(teardown)
    teardown.add_argument(
        "--delete-data", action="store_true", help="also empty and delete the bucket"
    )
    teardown.set_defaults(func=_teardown)
