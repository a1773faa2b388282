"""The EMR client of a deployment's region."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rental_kpis.aws.names import Deployment

if TYPE_CHECKING:
    import boto3


def client(deployment: Deployment, session: boto3.Session | None):
    """EMR's client from ``session``, else from a session with the standard retry mode."""
    from rental_kpis.aws.clients import new_session

    return (session or new_session(deployment.region)).client("emr")
