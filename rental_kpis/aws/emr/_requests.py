"""The RunJobFlow and AddJobFlowSteps requests, built from a ``ClusterSpec`` (pure: no AWS
call). The notebooks send them with boto3; the state machine gets them rendered into its
``${…}`` placeholders, so a cluster started either way is the same cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rental_kpis.aws.emr._spec import ClusterSpec
from rental_kpis.aws.names import CLUSTER_TAGS, RUN_ID_TAG, Deployment
from rental_kpis.project import LIBRARY_ZIP
from rental_kpis.spark.session import SESSION_CONF
from rental_kpis.stages import SPARK_STAGES

if TYPE_CHECKING:
    pass


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
    """The cluster's tags: the project's, EMR's managed tag and, given ``run_id``, the run's."""
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
