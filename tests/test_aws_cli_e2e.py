"""End to end: the ``rental-kpis aws`` commands in a subprocess against moto_server on 127.0.0.1,
found only through ``AWS_ENDPOINT_URL``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import requests
from cli_runner import run_cli

HERE = Path(__file__).parent
ROOT = HERE.parent
REGION = "eu-west-1"
BUCKET = "rental-kpis-e2e"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def moto_server(tmp_path):
    port = free_port()
    log = (tmp_path / "moto.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "moto_tls.py"), str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{url}/moto-api/", timeout=1)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "moto_server did not start"
            time.sleep(0.2)
    # Run definitions for real in moto's interpreter, as the in-process tests do.
    config = {"stepfunctions": {"execute_state_machine": True}}
    requests.post(f"{url}/moto-api/config", json=config, timeout=5).raise_for_status()
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def cli(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    return run_cli(
        "aws", *args, "--bucket", BUCKET, "--region", REGION, cwd=ROOT, env=env, timeout=300
    )


def it_sets_up_runs_and_tears_down_through_the_endpoint_variable(moto_server):
    aws = boto3.Session(
        region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    s3 = aws.client("s3", endpoint_url=moto_server)

    first = cli(moto_server, "setup", "--notify-email", "student@example.com")
    assert first.returncode == 0, first.stderr
    assert "set up   bucket rental-kpis-e2e" in first.stdout
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert "raw/rental_transactions/rental_transactions.csv" in keys
    assert "scripts/rental_kpis.zip" in keys
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    sfn = aws.client("stepfunctions", endpoint_url=moto_server)
    [machine] = sfn.list_state_machines()["stateMachines"]

    second = cli(moto_server, "setup", "--notify-email", "student@example.com")
    assert second.returncode == 0, second.stderr
    assert "nothing to change" in second.stdout

    run = cli(moto_server, "run", "--run-id", "e2e-1", "--poll-seconds", "0.2", "--timeout", "60")
    assert "run e2e-1 started" in run.stdout
    executions = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
    assert [e["name"] for e in executions] == ["e2e-1"]
    described = sfn.describe_execution(executionArn=executions[0]["executionArn"])
    # The emulator has no EMR behind the elasticmapreduce integration, so the run fails at its
    # first state and goes on to the failure notice: the command follows it, prints the error
    # and cause, and exits 1.
    assert described["status"] == "FAILED"
    assert "run e2e-1: FAILED" in run.stdout
    history = sfn.get_execution_history(executionArn=executions[0]["executionArn"])["events"]
    [failed] = [e["taskFailedEventDetails"] for e in history if e["type"] == "TaskFailed"]
    assert "elasticmapreduce" in failed["cause"]
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
    ]
    assert entered == ["CreateCluster", "NotifyFailure", "PipelineFailed"]
    assert f"cause: {described['cause']}" in run.stderr
    assert run.returncode == 1

    down = cli(moto_server, "teardown", "--delete-data")
    assert down.returncode == 0, down.stderr
    assert sfn.list_state_machines()["stateMachines"] == []
    assert aws.client("glue", endpoint_url=moto_server).get_crawlers()["Crawlers"] == []
    iam = aws.client("iam", endpoint_url=moto_server)
    assert [r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("rental-kpis")] == []
    assert s3.list_buckets()["Buckets"] == []


def it_says_in_one_line_when_aws_refuses(moto_server):
    result = cli(moto_server, "run", "--run-id", "x")
    assert result.returncode == 2
    assert result.stderr.startswith("rental-kpis: AWS error:")
    assert "StateMachineDoesNotExist" in result.stderr
    assert "Traceback" not in result.stderr


def it_runs_the_sprint_1_notebook_on_the_aws_backend(moto_server, tmp_path, monkeypatch):
    """The same notebook cells with backend="aws": connectivity, IAM tables, upload, verify."""
    import nbformat

    from rental_kpis.report import notebooks as report

    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)  # the kernel papermill starts inherits these
    assert cli(moto_server, "setup").returncode == 0
    notebook, sample = "01_sprint1_setup_and_ingestion", ROOT / "data" / "raw"
    report.build(
        tmp_path / "unused-lake",
        tmp_path / "out",
        sample,
        backend="aws",
        bucket=BUCKET,
        region=REGION,
        notebooks=(notebook,),
    )
    executed = nbformat.read(tmp_path / "out" / f"{notebook}.ipynb", as_version=4)
    shown = "".join(
        str(o.get("data", {}).get("text/plain", ""))
        + str(o.get("data", {}).get("text/markdown", ""))
        for cell in executed.cells
        for o in cell.get("outputs", [])
    )
    assert f"**aws** backend: s3://{BUCKET} in {REGION}" in shown
    assert "FAILED" not in shown  # every connectivity check answered "ok"
    rows = sum(len(f.read_text().splitlines()) - 1 for f in sample.glob("*/*.csv"))
    assert f"{rows:,} rows: every dataset has the SPEC §1 columns" in shown
