"""EMR: a pure cluster-config builder, the three step definitions, and thin boto3 calls to
create a cluster, add the steps, follow them and find a failed step's logs.

The same builders feed the notebooks (boto3 directly) and the state machine (rendered into its
``${…}`` placeholders) from one ``ClusterSpec``, the deployment's, so a cluster started either
way is the same cluster.
"""

from rental_kpis.aws.emr._clusters import (
    ACTIVE_STATES,
    ClusterRolesNotReady,
    RoleWait,
    cluster_state,
    create_cluster,
    project_clusters,
    roles_not_ready,
    run_clusters,
    terminate_cluster,
    terminate_project_clusters,
)
from rental_kpis.aws.emr._requests import (
    cluster_config,
    cluster_instances,
    cluster_tags,
    step_args,
    step_config,
)
from rental_kpis.aws.emr._spec import (
    DEFAULT_CORE_INSTANCES,
    DEFAULT_IDLE_TIMEOUT_SECONDS,
    DEFAULT_INSTANCE_TYPE,
    IDLE_TIMEOUT_RANGE,
    ClusterSpec,
)
from rental_kpis.aws.emr._steps import (
    FINAL_STEP_STATES,
    add_steps,
    require_completed,
    step_log_location,
    step_statuses,
    wait_for_steps,
)

__all__ = [
    "ACTIVE_STATES",
    "DEFAULT_CORE_INSTANCES",
    "DEFAULT_IDLE_TIMEOUT_SECONDS",
    "DEFAULT_INSTANCE_TYPE",
    "FINAL_STEP_STATES",
    "IDLE_TIMEOUT_RANGE",
    "ClusterRolesNotReady",
    "ClusterSpec",
    "RoleWait",
    "add_steps",
    "cluster_config",
    "cluster_instances",
    "cluster_state",
    "cluster_tags",
    "create_cluster",
    "project_clusters",
    "require_completed",
    "roles_not_ready",
    "run_clusters",
    "step_args",
    "step_config",
    "step_log_location",
    "step_statuses",
    "terminate_cluster",
    "terminate_project_clusters",
    "wait_for_steps",
]
