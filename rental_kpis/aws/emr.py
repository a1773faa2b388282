"""EMR: a pure cluster-config builder, the three step definitions, and thin boto3 calls to
create a cluster, add the steps, follow them and find a failed step's logs.

The same builders feed the notebooks (boto3 directly) and the state machine (rendered into its
``${…}`` placeholders) from one ``ClusterSpec``, the deployment's, so a cluster started either
way is the same cluster.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rental_kpis.aws.names import (
    CLUSTER_TAGS,
    EMR_RELEASE_LABEL,
    PROJECT_TAG,
    RUN_ID_TAG,
    Deployment,
)
from rental_kpis.errors import EmrStepFailed, RentalKpisError, UsageError
from rental_kpis.project import LIBRARY_ZIP
from rental_kpis.spark.session import SESSION_CONF
from rental_kpis.stages import SPARK_STAGES

if TYPE_CHECKING:
    import boto3


# The cluster a new deployment gets: one m5.xlarge primary node and no core node. EMR runs a
# single-node cluster, the primary node only (EMR Management Guide, "Overview of Amazon EMR";
# "Understand node types: primary, core, and task nodes"), which then runs the steps' Spark
# drivers and executors too, both KPI steps side by side (m5.xlarge: 4 vCPUs, 16 GiB, of which
# YARN gets 12 GiB: EMR Release Guide, "Task configuration"): plenty for the course data. Its 4
# vCPUs fit the On-Demand vCPU quota of a new account, which may be 5 (Amazon EC2 User Guide,
# "On-Demand Instance quotas"); 1 primary + 2 core m5.xlarge would need 12.
DEFAULT_INSTANCE_TYPE = "m5.xlarge"
DEFAULT_CORE_INSTANCES = 0
DEFAULT_IDLE_TIMEOUT_SECONDS = 3600
IDLE_TIMEOUT_RANGE = (60, 604800)  # EMR's AutoTerminationPolicy.IdleTimeout bounds, seconds
_INSTANCE_TYPE = re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9]+")
_SUBNET_ID = re.compile(r"subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})")  # EC2 resource ids


@dataclass(frozen=True)
class ClusterSpec:
    """The one description of a deployment's cluster: what a student may choose (node type,
    core nodes, idle timeout, subnet); everything else follows the project.

    Every cluster of a deployment is built from it by ``cluster_config``: the state machine's
    CreateCluster (rendered at setup) and the notebooks' ``create_cluster``, which read it back
    from the deployed state machine (``from_request``). A value no cluster could have raises
    ``UsageError`` (one line on the command line)."""

    release_label: str = EMR_RELEASE_LABEL
    master_instance_type: str = DEFAULT_INSTANCE_TYPE
    core_instance_type: str = DEFAULT_INSTANCE_TYPE
    core_instance_count: int = DEFAULT_CORE_INSTANCES
    idle_timeout_seconds: int = DEFAULT_IDLE_TIMEOUT_SECONDS
    step_concurrency: int = 2
    # None: EMR picks a subnet of the account's default VPC (``aws doctor`` checks one exists).
    subnet_id: str | None = None

    def __post_init__(self) -> None:
        if not self.release_label.startswith("emr-7."):
            raise UsageError(f"release label {self.release_label!r}: the project needs emr-7.x")
        if self.step_concurrency < 2:
            raise UsageError("step concurrency must be at least 2: the KPI steps run in parallel")
        low, high = IDLE_TIMEOUT_RANGE
        if not low <= self.idle_timeout_seconds <= high:
            raise UsageError(
                f"idle timeout {self.idle_timeout_seconds} s: EMR accepts {low} to {high} seconds"
            )
        if self.core_instance_count < 0:
            raise UsageError(
                f"core instances {self.core_instance_count}: 0 (a single-node cluster, the "
                "primary node only) or more"
            )
        for kind in {self.master_instance_type, self.core_instance_type}:
            if not _INSTANCE_TYPE.fullmatch(kind):
                raise UsageError(f"instance type {kind!r}: expected a type such as m5.xlarge")
        if self.subnet_id is not None and not _SUBNET_ID.fullmatch(self.subnet_id):
            raise UsageError(
                f"subnet id {self.subnet_id!r}: expected subnet- and 8 or 17 hex digits"
            )

    @property
    def instance_count(self) -> int:
        return 1 + self.core_instance_count

    @property
    def instance_types(self) -> list[str]:
        """Every instance the cluster runs, the primary node first."""
        return [self.master_instance_type] + [self.core_instance_type] * self.core_instance_count

    def shape(self) -> str:
        """The nodes in words: ``1 × m5.xlarge (primary only)``, or
        ``1 primary + 2 core m5.xlarge``."""
        if not self.core_instance_count:
            return f"1 × {self.master_instance_type} (primary only)"
        if self.core_instance_type == self.master_instance_type:
            return f"1 primary + {self.core_instance_count} core {self.core_instance_type}"
        return (
            f"1 primary {self.master_instance_type} + {self.core_instance_count} core "
            f"{self.core_instance_type}"
        )

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> ClusterSpec:
        """The spec a RunJobFlow request of ``cluster_config`` was built from (the inverse of
        ``cluster_config``): how the notebooks read back the cluster setup deployed in the state
        machine's CreateCluster. A cluster without core nodes gets the primary's type for them."""
        instances = request["Instances"]
        groups = {g["InstanceRole"]: g for g in instances["InstanceGroups"]}
        primary, core = groups["MASTER"], groups.get("CORE")
        return cls(
            release_label=request["ReleaseLabel"],
            master_instance_type=primary["InstanceType"],
            core_instance_type=core["InstanceType"] if core else primary["InstanceType"],
            core_instance_count=core["InstanceCount"] if core else 0,
            idle_timeout_seconds=request["AutoTerminationPolicy"]["IdleTimeout"],
            step_concurrency=request["StepConcurrencyLevel"],
            subnet_id=instances.get("Ec2SubnetId"),
        )


def cluster_instances(spec: ClusterSpec) -> dict[str, Any]:
    """The ``Instances`` block: one primary and ``core_instance_count`` core nodes (none: a
    single-node cluster, whose primary node runs the steps), kept alive between steps (the
    optimized ``createCluster`` integration requires ``KeepJobFlowAliveWhenNoSteps``)."""
    groups: list[dict[str, Any]] = [
        {
            "Name": "primary",
            "InstanceRole": "MASTER",
            "InstanceType": spec.master_instance_type,
            "InstanceCount": 1,
        }
    ]
    if spec.core_instance_count:
        groups.append(
            {
                "Name": "core",
                "InstanceRole": "CORE",
                "InstanceType": spec.core_instance_type,
                "InstanceCount": spec.core_instance_count,
            }
        )
    instances: dict[str, Any] = {
        "InstanceGroups": groups,
        "KeepJobFlowAliveWhenNoSteps": True,
        "TerminationProtected": False,
    }
    if spec.subnet_id:
        instances["Ec2SubnetId"] = spec.subnet_id
    return instances


def cluster_config(
    deployment: Deployment, spec: ClusterSpec | None = None, run_id: str | None = None
) -> dict[str, Any]:
    """The RunJobFlow request for the project's cluster (pure: no AWS call), tagged with
    ``run_id`` when given (``cluster_tags``).

    ``KeepJobFlowAliveWhenNoSteps`` is on because steps arrive one by one; the idle
    auto-termination policy is what stops a forgotten cluster from billing.
    """
    spec = spec or ClusterSpec()
    return {
        "Name": deployment.cluster_name,
        "ReleaseLabel": spec.release_label,
        "Applications": [{"Name": "Spark"}],
        "LogUri": deployment.lake.uri("emr-logs") + "/",
        "ServiceRole": deployment.emr_service_role,
        "JobFlowRole": deployment.emr_ec2_role,
        "VisibleToAllUsers": True,
        "StepConcurrencyLevel": spec.step_concurrency,
        "AutoTerminationPolicy": {"IdleTimeout": spec.idle_timeout_seconds},
        "Instances": cluster_instances(spec),
        "Tags": cluster_tags(run_id),
    }


def cluster_tags(run_id: str | None = None) -> list[dict[str, str]]:
    """The cluster's tags: the project's (the roles drive only clusters carrying it), the one
    EMR propagates to the EC2 resources it creates, which the service role's terminate and
    clean-up rights are scoped to (``names.EMR_MANAGED_TAG``), and, given ``run_id``, the run
    that starts it (``names.RUN_ID_TAG``: ``run_clusters`` finds it by that)."""
    tags = [{"Key": key, "Value": value} for key, value in CLUSTER_TAGS]
    return [*tags, {"Key": RUN_ID_TAG, "Value": run_id}] if run_id else tags


def step_args(deployment: Deployment, step: str, run_id: str) -> list[str]:
    """The ``command-runner.jar`` arguments of one step: spark-submit with the library zip and
    the session settings every launch gets (``spark.SESSION_CONF``, as locally)."""
    if step not in SPARK_STAGES:
        raise ValueError(f"unknown step {step!r}; steps are {', '.join(SPARK_STAGES)}")
    args = ["spark-submit", "--deploy-mode", "cluster"]
    for key, value in SESSION_CONF.items():
        args += ["--conf", f"{key}={value}"]
    lake = deployment.lake
    args += ["--py-files", lake.uri("scripts", LIBRARY_ZIP), lake.uri("scripts", f"{step}.py")]
    return [*args, "--lake-root", lake.root, "--run-id", run_id]


def step_config(deployment: Deployment, step: str, run_id: str) -> dict[str, Any]:
    """One AddJobFlowSteps step. ``CONTINUE``: EMR refuses any other ActionOnFailure when
    StepConcurrencyLevel > 1, and the caller (state machine or notebook) decides what a failure
    means."""
    return {
        "Name": step,
        "ActionOnFailure": "CONTINUE",
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": step_args(deployment, step, run_id)},
    }


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
    emr = _client(deployment, session)
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


def add_steps(
    deployment: Deployment,
    cluster_id: str,
    run_id: str,
    steps: tuple[str, ...] = SPARK_STAGES,
    session: boto3.Session | None = None,
) -> dict[str, str]:
    """Submit the steps in order; returns step name -> step id."""
    emr = _client(deployment, session)
    configs = [step_config(deployment, step, run_id) for step in steps]
    ids = emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=configs)["StepIds"]
    return dict(zip(steps, ids, strict=True))


FINAL_STEP_STATES = {"COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED"}


def wait_for_steps(
    deployment: Deployment,
    cluster_id: str,
    step_ids: dict[str, str],
    *,
    poll_seconds: float = 30.0,
    timeout_seconds: float = 3 * 3600,
    on_status: Callable[[str, str, float], None] | None = None,
    session: boto3.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str]:
    """Poll until every step has ended; reports each change of state as (step, state, elapsed)."""
    emr = _client(deployment, session)
    started = time.monotonic()
    seen: dict[str, str] = {}
    while True:
        for name, step_id in step_ids.items():
            state = emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Status"][
                "State"
            ]
            if seen.get(name) != state:
                seen[name] = state
                if on_status:
                    on_status(name, state, time.monotonic() - started)
        if all(state in FINAL_STEP_STATES for state in seen.values()):
            return seen
        if time.monotonic() - started > timeout_seconds:
            raise TimeoutError(f"steps still running after {timeout_seconds:.0f} s: {seen}")
        sleep(poll_seconds)


def step_log_location(deployment: Deployment, cluster_id: str, step_id: str) -> str:
    """Where EMR puts a step's stdout/stderr (``LogUri`` + cluster + step id)."""
    return deployment.lake.uri("emr-logs", cluster_id, "steps", step_id) + "/"


def step_statuses(
    deployment: Deployment,
    cluster_id: str,
    step_ids: dict[str, str],
    session: boto3.Session | None = None,
) -> list[dict[str, Any]]:
    """Each step's state, start and end, and, for a failed one, EMR's reason and its log."""
    emr = _client(deployment, session)
    rows = []
    for step, step_id in step_ids.items():
        status = emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]["Status"]
        times = status.get("Timeline", {})
        details = status.get("FailureDetails", {})
        rows.append(
            {
                "stage": step,
                "status": status["State"].lower(),
                "started": times.get("StartDateTime") or times.get("CreationDateTime"),
                "finished": times.get("EndDateTime"),
                "reason": details.get("Message") or details.get("Reason", ""),
                "log": details.get("LogFile") or step_log_location(deployment, cluster_id, step_id),
            }
        )
    return rows


def require_completed(
    deployment: Deployment,
    cluster_id: str,
    step_ids: dict[str, str],
    session: boto3.Session | None = None,
) -> list[dict[str, Any]]:
    """The steps' statuses; raises ``EmrStepFailed`` (reason and log) for the first step that
    did not end COMPLETED, so nothing downstream runs on missing or stale input."""
    rows = step_statuses(deployment, cluster_id, step_ids, session)
    for row in rows:
        if row["status"] != "completed":
            raise EmrStepFailed(row["stage"], row["status"].upper(), row["reason"], row["log"])
    return rows


def terminate_cluster(
    deployment: Deployment, cluster_id: str, session: boto3.Session | None = None
) -> None:
    _client(deployment, session).terminate_job_flows(JobFlowIds=[cluster_id])


ACTIVE_STATES = ("STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING")


def project_clusters(deployment: Deployment, session: boto3.Session | None = None) -> list[str]:
    """Active clusters of this deployment: its cluster name and the project tag (another
    deployment in the same account has another name; a cluster of anyone else lacks both)."""
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
    emr = _client(deployment, session)
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
    emr = _client(deployment, session)
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
    status = _client(deployment, session).describe_cluster(ClusterId=cluster_id)["Cluster"][
        "Status"
    ]
    reason = status.get("StateChangeReason", {})
    text = " ".join(part for part in (reason.get("Code", ""), reason.get("Message", "")) if part)
    return status["State"], text


def _client(deployment: Deployment, session: boto3.Session | None):
    """EMR's client from ``session``, else from a session with the standard retry mode."""
    from rental_kpis.aws.clients import new_session

    return (session or new_session(deployment.region)).client("emr")
