"""``rental-kpis aws …``: parse, call ``rental_kpis.aws.deploy``, print."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rental_kpis.layout import check_run_id, new_run_id

if TYPE_CHECKING:
    from rental_kpis.aws.emr import ClusterSpec


DEFAULT_SUBNET = "default"  # --subnet-id default: back to a subnet of the default VPC


def _cluster_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The cluster flags given on the command line, as ``ClusterSpec`` fields; checked at once
    (a value no cluster can have is a ``UsageError``, before any AWS call)."""
    from rental_kpis.aws.emr import ClusterSpec

    changes: dict[str, Any] = {}
    if args.instance_type is not None:
        changes["master_instance_type"] = changes["core_instance_type"] = args.instance_type
    if args.core_instances is not None:
        changes["core_instance_count"] = args.core_instances
    if args.idle_timeout is not None:
        changes["idle_timeout_seconds"] = args.idle_timeout
    if args.subnet_id is not None:
        changes["subnet_id"] = None if args.subnet_id == DEFAULT_SUBNET else args.subnet_id
    replace(ClusterSpec(), **changes)
    return changes


def _setup(args: argparse.Namespace) -> int:
    from rental_kpis.aws import deploy
    from rental_kpis.aws.emr import ClusterSpec
    from rental_kpis.aws.iam import Propagation
    from rental_kpis.aws.sts import deployment_for, resolve_region, session_for

    changes = _cluster_changes(args)  # a bad flag is one line, before anything is read or made
    session = session_for(resolve_region(args.region))
    deployment = deployment_for(args.bucket, session.region_name, session)
    # A flag left out keeps what is deployed (the default before the first setup).
    spec = replace(deploy.deployed_cluster(deployment, session) or ClusterSpec(), **changes)
    report = deploy.setup(
        args.bucket,
        session.region_name,
        raw=args.raw,
        notify_email=args.notify_email,
        spec=spec,
        session=session,
        propagation=Propagation(say=lambda message: print(f"  … {message}", flush=True)),
    )
    d = report.deployment
    for item in report.changed:
        print(f"set up   {item}")
    print(f"uploaded {len(report.uploaded)} file(s)" + (":" if report.uploaded else ""))
    for key in report.uploaded:
        print(f"  s3://{d.bucket}/{key}")
    if not report.changed and not report.uploaded:
        print("nothing to change: everything is already in place")
    if args.notify_email:
        print(f"confirm the subscription in the e-mail AWS sent to {args.notify_email}")
    print(f"\ncluster       {_cluster_line(report.cluster)}")
    print(f"state machine {d.state_machine_arn}")
    print(f"next: rental-kpis aws run --bucket {d.bucket} --region {d.region}")
    return 0


def _cluster_line(spec: ClusterSpec) -> str:
    network = f"subnet {spec.subnet_id}" if spec.subnet_id else "the default VPC"
    return (
        f"{spec.shape()}, {spec.release_label}, in {network}, "
        f"stops after {spec.idle_timeout_seconds} s idle"
    )


def _run(args: argparse.Namespace) -> int:
    from rental_kpis.aws import stepfunctions
    from rental_kpis.aws.sts import deployment_for, session_for

    run_id = check_run_id(args.run_id) if args.run_id else new_run_id()
    session = session_for(args.region)
    d = deployment_for(args.bucket, session.region_name, session)
    if args.subnet_id:
        for item in stepfunctions.use_subnet(d, session, args.subnet_id):
            print(f"updated  {item}")
    arn = stepfunctions.start_run(d, session, run_id)
    print(f"run {run_id} started: {arn}")

    def show(state: str, elapsed: float) -> None:
        print(f"  {elapsed:8.1f} s  {state}", flush=True)

    outcome = stepfunctions.follow_run(
        arn, session, poll_seconds=args.poll_seconds, timeout_seconds=args.timeout, on_state=show
    )
    print(f"run {run_id}: {outcome.status}")
    for line in stepfunctions.terminate_lost_clusters(d, session, run_id, outcome):
        print(line, file=sys.stderr)
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
    cluster = stepfunctions.cluster_id_of(outcome.events)
    if cluster:
        from rental_kpis.aws import emr

        state, reason = emr.cluster_state(d, cluster, session)
        print(f"cluster {cluster}: {state} {reason}".rstrip(), file=sys.stderr)
    print(f"EMR logs: s3://{d.bucket}/emr-logs/", file=sys.stderr)
    return 1


def _teardown(args: argparse.Namespace) -> int:
    from rental_kpis.aws import deploy
    from rental_kpis.aws.sts import resolve_region
    from rental_kpis.errors import TeardownIncomplete

    try:
        removed = deploy.teardown(
            args.bucket, resolve_region(args.region), delete_data=args.delete_data
        )
    except TeardownIncomplete as error:
        for item in error.removed:
            print(f"removed {item}")
        raise
    for item in removed:
        print(f"removed {item}")
    if not removed:
        print("nothing to remove")
    if not args.delete_data:
        print(f"kept bucket {args.bucket} (its data); add --delete-data to remove it too")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from rental_kpis.aws import doctor
    from rental_kpis.aws.names import Deployment
    from rental_kpis.aws.sts import session_for

    changes = _cluster_changes(args)  # a bad flag is one line, before any AWS call
    session = session_for(args.region)
    print(f"rental-kpis aws doctor: bucket {args.bucket}, region {session.region_name}")
    who = doctor.credentials_check(session)
    print(who.line())
    if who.status == doctor.FAIL:
        return 1
    account = who.detail.split()[1]
    deployment = Deployment(args.bucket, session.region_name, account)
    checks = doctor.run_checks(deployment, changes, session)
    for check in checks:
        print(check.line())
    failed = [c for c in checks if c.status == doctor.FAIL]
    print(f"{len(failed)} check(s) failed" if failed else "ready: rental-kpis aws setup …")
    return 1 if failed else 0


def _policy(args: argparse.Namespace) -> int:
    import json

    from rental_kpis.aws import iam
    from rental_kpis.aws.sts import deployment_for, session_for

    session = session_for(args.region)
    deployment = deployment_for(args.bucket, session.region_name, session)
    print(json.dumps(iam.operator_policy(deployment), indent=2))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    aws = sub.add_parser("aws", help="the AWS backend: doctor, setup, run, teardown")
    verbs = aws.add_subparsers(dest="aws_command", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--bucket", required=True, help="the project's S3 bucket")
        parser.add_argument(
            "--region", default=None, help="AWS region, e.g. eu-west-1 (default: AWS config)"
        )

    def cluster(parser: argparse.ArgumentParser) -> None:
        """The cluster's flags; one left out keeps what setup deployed (first setup: the
        default, a single m5.xlarge primary node)."""
        parser.add_argument(
            "--instance-type", default=None, help="EMR node type (first setup: m5.xlarge)"
        )
        parser.add_argument(
            "--core-instances",
            type=int,
            default=None,
            help="EMR core nodes besides the primary, 0 or more (first setup: 0, single node)",
        )
        parser.add_argument(
            "--idle-timeout",
            type=int,
            default=None,
            help="seconds before an idle cluster stops itself, 60-604800 (first setup: 3600)",
        )
        parser.add_argument(
            "--subnet-id",
            default=None,
            help="launch into this subnet; 'default': the default VPC (first setup: default)",
        )

    doc = verbs.add_parser("doctor", help="read-only preflight: what would stop or cost a run")
    common(doc)
    cluster(doc)
    doc.set_defaults(func=_doctor)

    policy = verbs.add_parser("policy", help="print the IAM policy your own user needs")
    common(policy)
    policy.set_defaults(func=_policy)

    setup = verbs.add_parser("setup", help="create everything (idempotent)")
    common(setup)
    cluster(setup)
    setup.add_argument("--notify-email", default=None, help="subscribe this e-mail to notices")
    setup.add_argument("--raw", type=Path, default=Path("data/raw"), help="raw CSV folder")
    setup.set_defaults(func=_setup)

    run = verbs.add_parser("run", help="start the state machine and follow it")
    common(run)
    run.add_argument(
        "--subnet-id", default=None, help="launch the cluster into this subnet from now on"
    )
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
