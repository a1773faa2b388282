"""The region every ``rental-kpis aws`` command works in (``rental_kpis.aws.sts``): a region that
does not exist is one line naming it, before any AWS call, never a connection error that reads
like a credentials problem.

The commands run in-process on real botocore with dummy credentials, pointed through
``AWS_ENDPOINT_URL`` at a local port nobody listens on: an AWS call fails as a mistyped
region's does for real (no endpoint answers), offline and at once."""

from __future__ import annotations

import socket

import pytest

from rental_kpis.aws.sts import check_region, known_regions, resolve_region
from rental_kpis.cli import main
from rental_kpis.errors import UsageError

BUCKET = "rental-kpis-region-test"


@pytest.fixture
def nowhere(fake_aws_credentials, monkeypatch) -> None:
    """Every AWS endpoint is a closed local port, and botocore tries each call once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rental-kpis: error: "), err
    return lines[0]


@pytest.mark.parametrize("command", ["doctor", "setup", "run", "teardown", "policy"])
def it_says_in_one_line_that_a_mistyped_region_does_not_exist(nowhere, capsys, command):
    assert main(["aws", command, "--bucket", BUCKET, "--region", "eu-wst-1"]) == 2
    line = one_line_error(capsys)
    assert "AWS region 'eu-wst-1' does not exist" in line
    assert "did you mean eu-west-1?" in line
    assert "credentials" not in line


def it_names_a_configured_region_that_does_not_exist(nowhere, capsys, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-centrl-1")
    assert main(["aws", "doctor", "--bucket", BUCKET]) == 2
    line = one_line_error(capsys)
    assert "AWS region 'eu-centrl-1' (from your AWS configuration) does not exist" in line
    assert "did you mean eu-central-1?" in line


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1", "cn-north-1", "us-gov-west-1"])
def it_takes_a_region_of_any_partition(region):
    assert region in known_regions()
    assert check_region(region) == region
    assert resolve_region(region) == region


def it_suggests_no_region_when_none_is_near():
    with pytest.raises(
        UsageError, match=r"region 'mars' does not exist: botocore [\d.]+ knows"
    ) as e:
        check_region("mars")
    assert "did you mean" not in str(e.value)
