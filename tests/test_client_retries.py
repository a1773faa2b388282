"""Every client of the AWS backend retries throttling in botocore's standard mode."""

from __future__ import annotations

import pytest
from botocore.config import Config

from rental_kpis.aws import clients


@pytest.mark.parametrize("service", ["s3", "emr", "stepfunctions", "glue", "athena", "iam"])
def it_makes_every_client_of_a_session_retry_in_standard_mode(service, monkeypatch):
    monkeypatch.setenv("AWS_RETRY_MODE", "legacy")  # the configuration's mode does not win
    client = clients.new_session("eu-west-1").client(service)
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 10}


def it_keeps_standard_retries_under_a_client_config_of_its_own():
    client = clients.new_session("eu-west-1").client("s3", config=Config(connect_timeout=3))
    assert client.meta.config.retries["mode"] == "standard"
    assert client.meta.config.connect_timeout == 3


def it_gives_each_session_its_own_region():
    first, second = clients.new_session("eu-west-1"), clients.new_session("us-east-1")
    assert first.client("s3").meta.region_name == "eu-west-1"
    assert second.client("sts").meta.region_name == "us-east-1"


def it_gives_the_commands_and_notebooks_sessions_standard_retries(monkeypatch):
    """``sts.session_for`` is where every ``aws`` command and the notebooks' backend get their
    session: its clients retry in standard mode."""
    from rental_kpis.aws import sts

    monkeypatch.setenv("AWS_RETRY_MODE", "legacy")
    client = sts.session_for("eu-west-1").client("stepfunctions")
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 10}


def it_gives_emr_calls_without_a_session_standard_retries(monkeypatch):
    from rental_kpis.aws.emr._client import client as emr_client
    from rental_kpis.aws.names import Deployment

    monkeypatch.setenv("AWS_RETRY_MODE", "legacy")
    client = emr_client(Deployment("rental-kpis-b", "eu-west-1", "123456789012"), None)
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 10}
    assert client.meta.region_name == "eu-west-1"
