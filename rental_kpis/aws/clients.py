"""The botocore settings every client of the AWS backend is made with, in one place.

Clients retry in botocore's ``standard`` mode: throttling (``ThrottlingException``,
``TooManyRequestsException``, …), transient errors and timeouts are retried with capped
exponential backoff and jitter, where the ``legacy`` default retries fewer error codes and
gives up sooner. A client made with a ``Config`` of its own keeps these settings for what that
``Config`` does not set.
"""

from __future__ import annotations

import boto3
import botocore.session
from botocore.config import Config

# Ten attempts in all (the first and nine retries): standard mode waits at most 20 s between
# two of them.
MAX_ATTEMPTS = 10
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS})


def new_session(region_name: str | None = None) -> boto3.Session:
    """A boto3 session for ``region_name`` whose every client has ``CLIENT_CONFIG``."""
    core = botocore.session.get_session()
    core.set_default_client_config(CLIENT_CONFIG)
    return boto3.Session(botocore_session=core, region_name=region_name)
