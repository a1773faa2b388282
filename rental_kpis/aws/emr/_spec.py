"""The one description of a deployment's cluster, ``ClusterSpec``: what a student may choose."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rental_kpis.aws.names import EMR_RELEASE_LABEL
from rental_kpis.errors import UsageError

if TYPE_CHECKING:
    pass


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
