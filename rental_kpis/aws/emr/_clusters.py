"""Clusters: start one (waiting while IAM propagates its roles), find the deployment's, read
one's state, terminate them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rental_kpis.aws.emr._client import client
from rental_kpis.aws.emr._requests import cluster_config
from rental_kpis.aws.emr._spec import ClusterSpec
from rental_kpis.aws.names import PROJECT_TAG, RUN_ID_TAG, Deployment
from rental_kpis.errors import RentalKpisError

if TYPE_CHECKING:
    import boto3


class ClusterRolesNotReady(RentalKpisError):
    """EMR still refuses the cluster's instance profile or a role after every retry."""


@dataclass(frozen=True)
class RoleWait:
    """How ``create_cluster`` waits while EMR does not accept a role or instance profile that
    setup has just made. IAM is eventually consistent (IAM User Guide, "Troubleshoot IAM":
    "Changes that I make are not always immediately visible"), and EMR answers RunJobFlow with
    ``ValidationException`` "Invalid InstanceProfile: …" meanwhile; AWS's own EMR sample retries
    that answer (5 tries, 10 s apart), and "Eventual consistency in the Amazon EC2 API" advises
    exponential backoff. The defaults: 5 tries, 5 + 10 + 20 + 40 s apart, about as long as the
    state machine's CreateCluster retries. Tests pass ``sleep``."""

    delays: tuple[float, ...] = (5.0, 10.0, 20.0, 40.0)
    sleep: Callable[[float], None] = time.sleep
    say: Callable[[str], None] = lambda message: None


def roles_not_ready(error: Exception) -> bool:
    """EMR's answer while IAM has not propagated the cluster's instance profile or a role to it:
    ``ValidationException`` naming the instance profile or a role. Any other error is not."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return False
    code = response.get("Error", {}).get("Code", "")
    message = response.get("Error", {}).get("Message", "").lower()
    words = ("instanceprofile", "instance profile", "role")
    return code == "ValidationException" and any(word in message for word in words)


def create_cluster(
    deployment: Deployment,
    spec: ClusterSpec,
    session: boto3.Session | None = None,
    wait: RoleWait | None = None,
    run_id: str | None = None,
) -> str:
    """Start a cluster built from ``spec`` (the deployment's own: ``deploy.deployed_cluster``,
    so that it is the cluster the state machine starts), tagged with ``run_id``; returns its id.

    While EMR answers that the instance profile or a role is not valid yet (``roles_not_ready``),
    the request is sent again after each of ``wait.delays``; a RunJobFlow that failed created no
    cluster, so a retry cannot start a second one. Still refused after the last one:
    ``ClusterRolesNotReady``, one line naming EMR's answer and what to do. Any other error
    propagates at once."""
    wait = wait or RoleWait()
    emr = client(deployment, session)
    request = cluster_config(deployment, spec, run_id)
    attempts = len(wait.delays) + 1
    for attempt, delay in enumerate((*wait.delays, None), start=1):
        try:
            return emr.run_job_flow(**request)["JobFlowId"]
        except Exception as error:
            if not roles_not_ready(error):
                raise
            answer = getattr(error, "response", {}).get("Error", {})
            said = f"{answer.get('Code')}: {answer.get('Message')}"
            if delay is None:
                raise ClusterRolesNotReady(
                    f"EMR still refuses the cluster's roles after {attempts} attempts over "
                    f"{sum(wait.delays):.0f} s ({said}): IAM may need longer to make a new "
                    "role or instance profile visible; start the run again in a few minutes, "
                    f"or run `rental-kpis aws setup --bucket {deployment.bucket}` if the roles "
                    "were removed"
                ) from error
            wait.say(
                f"EMR does not accept the cluster's roles yet ({said}); waiting {delay:.0f} s "
                f"for IAM to propagate (attempt {attempt} of {attempts})"
            )
            wait.sleep(delay)
    raise AssertionError("unreachable")


def terminate_cluster(
    deployment: Deployment, cluster_id: str, session: boto3.Session | None = None
) -> None:
    client(deployment, session).terminate_job_flows(JobFlowIds=[cluster_id])


ACTIVE_STATES = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING")


def project_clusters(deployment: Deployment, session: boto3.Session | None = None) -> list[str]:
    """Active clusters of this deployment: its cluster name and the project tag."""
    return _clusters_tagged(deployment, [], session)


def run_clusters(
    deployment: Deployment, run_id: str, session: boto3.Session | None = None
) -> list[str]:
    """Active clusters of this deployment that ``run_id`` started (tag ``names.RUN_ID_TAG``)."""
    return _clusters_tagged(deployment, [{"Key": RUN_ID_TAG, "Value": run_id}], session)


def _clusters_tagged(
    deployment: Deployment, tags: list[dict[str, str]], session: boto3.Session | None
) -> list[str]:
    """Active clusters of the deployment's name carrying the project tag and ``tags``.
    ListClusters filters by state only (EMR API Reference, "ListClusters"): each candidate
    of the deployment's name is described for its tags."""
    emr = client(deployment, session)
    wanted = [{"Key": PROJECT_TAG[0], "Value": PROJECT_TAG[1]}, *tags]
    found = []
    for page in emr.get_paginator("list_clusters").paginate(ClusterStates=list(ACTIVE_STATES)):
        for cluster in page["Clusters"]:
            if cluster["Name"] != deployment.cluster_name:
                continue
            have = emr.describe_cluster(ClusterId=cluster["Id"])["Cluster"].get("Tags", [])
            if all(tag in have for tag in wanted):
                found.append(cluster["Id"])
    return found


def terminate_project_clusters(
    deployment: Deployment,
    session: boto3.Session | None = None,
    *,
    delay_seconds: int = 30,
    max_attempts: int = 60,
) -> list[str]:
    """Terminate every active cluster of this deployment and wait until EMR reports each
    TERMINATED (a stopped execution leaves its cluster running: teardown's first job)."""
    emr = client(deployment, session)
    ids = project_clusters(deployment, session)
    if not ids:
        return []
    emr.terminate_job_flows(JobFlowIds=ids)
    config = {"Delay": delay_seconds, "MaxAttempts": max_attempts}
    for cluster_id in ids:
        emr.get_waiter("cluster_terminated").wait(ClusterId=cluster_id, WaiterConfig=config)
    return [f"cluster {cluster_id} (terminated)" for cluster_id in ids]


def cluster_state(
    deployment: Deployment, cluster_id: str, session: boto3.Session | None = None
) -> tuple[str, str]:
    """A cluster's state and EMR's reason for it (why it failed to start, e.g. a VPC, quota or
    permission problem, or why it ended)."""
    status = client(deployment, session).describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]
    reason = status.get("StateChangeReason", {})
    text = " ".join(part for part in (reason.get("Code", ""), reason.get("Message", "")) if part)
    return status["State"], text
