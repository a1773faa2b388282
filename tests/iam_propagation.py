"""What AWS answers while a role just made has not propagated yet (on moto), and a recorder of
the waits that ride it out instead of sleeping."""

from __future__ import annotations

import boto3
from botocore.awsrequest import AWSResponse

from rental_kpis.aws.iam import Propagation


class Recorder:
    """What ``Propagation`` says and sleeps, instead of sleeping."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self.slept: list[float] = []

    def propagation(self) -> Propagation:
        return Propagation(
            delays=(1.0, 2.0, 4.0), waiter_delay=0, sleep=self.slept.append, say=self.said.append
        )


def fail_first(session: boto3.Session, event: str, code: str, message: str, times: int = 1):
    """Answer the first ``times`` calls of ``event`` as AWS answers while a new role has not
    propagated yet (botocore's before-call hook short-circuits them); later calls reach moto."""
    left = {"n": times}

    def handler(**_):
        if left["n"] == 0:
            return None
        left["n"] -= 1
        response = AWSResponse("https://moto", 400, {}, None)
        return response, {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}}

    session.events.register(f"before-call.{event}", handler)
