"""The Step Functions definition: render ``stepfunctions/*.asl.json`` for one deployment, and
read it as a graph (for the leak test and the orchestration notebook's picture). Stdlib only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rental_kpis import queries
from rental_kpis.aws.emr import ClusterSpec, cluster_instances, cluster_tags, step_args
from rental_kpis.aws.names import RUN_ID_TAG, Deployment, substitute
from rental_kpis.project import STATE_MACHINE_FILE
from rental_kpis.stages import SPARK_STAGES, stage

TEMPLATE = STATE_MACHINE_FILE
RUN_ID_SENTINEL = "\x00run-id\x00"
# CreateCluster tags the cluster with the run id, the execution's name, so that a cluster whose
# id the run lost (CreateCluster failed or timed out after EMR accepted RunJobFlow: the error
# output holds only Error and Cause) can be found and terminated (``emr.run_clusters``).
RUN_TAG = {"Key": RUN_ID_TAG, "Value.$": "$$.Execution.Name"}
TERMINATE_RESOURCE = "arn:aws:states:::elasticmapreduce:terminateCluster"


@dataclass(frozen=True)
class Timing:
    """Deploy-time knobs of the state machine (tests shrink them; AWS keeps the defaults)."""

    retry_interval_seconds: int = 10
    crawler_poll_seconds: int = 30
    max_crawler_polls: int = 40  # 40 × 30 s = 20 min, far above a crawl of four tables
    # Task timeouts, each caught and routed to a terminate task (a state-machine-level timeout
    # would skip the Catch and leave the cluster running).
    create_cluster_timeout_seconds: int = 300  # the RunJobFlow request alone
    cluster_start_timeout_seconds: int = 1800  # provisioning + bootstrap, before the first step
    step_timeout_seconds: int = 3 * 3600  # one Spark step, far above the sample's minutes
    terminate_timeout_seconds: int = 1800


def intrinsic_string(value: str) -> str:
    """A string literal inside an intrinsic function, with ASL's escapes."""
    return "'" + re.sub(r"([\\'{}])", r"\\\1", value) + "'"


def step_args_intrinsic(deployment: Deployment, step: str) -> str:
    """``States.Array(...)`` of the step's arguments, the run id being the execution's name."""
    parts = [
        "$$.Execution.Name" if arg == RUN_ID_SENTINEL else intrinsic_string(arg)
        for arg in step_args(deployment, step, RUN_ID_SENTINEL)
    ]
    return f"States.Array({', '.join(parts)})"


def values(
    deployment: Deployment, spec: ClusterSpec | None = None, timing: Timing | None = None
) -> dict[str, Any]:
    spec = spec or ClusterSpec()
    timing = timing or Timing()
    found = {
        **deployment.placeholders(),
        "ClusterName": deployment.cluster_name,
        "EmrReleaseLabel": spec.release_label,
        "MasterInstanceType": spec.master_instance_type,
        "CoreInstanceType": spec.core_instance_type,
        "CoreInstanceCount": spec.core_instance_count,
        "IdleTimeoutSeconds": spec.idle_timeout_seconds,
        "StepConcurrencyLevel": spec.step_concurrency,
        "RetryIntervalSeconds": timing.retry_interval_seconds,
        "CrawlerPollSeconds": timing.crawler_poll_seconds,
        "MaxCrawlerPolls": timing.max_crawler_polls,
        "ClusterInstances": cluster_instances(spec),
        "ClusterTags": [*cluster_tags(), RUN_TAG],
        "CreateClusterTimeoutSeconds": timing.create_cluster_timeout_seconds,
        "FirstStepTimeoutSeconds": timing.cluster_start_timeout_seconds
        + timing.step_timeout_seconds,
        "StepTimeoutSeconds": timing.step_timeout_seconds,
        "TerminateTimeoutSeconds": timing.terminate_timeout_seconds,
        "NamedQueries": [{"name": q.name, "sql": q.sql} for q in queries.all_queries()],
    }
    for step in SPARK_STAGES:
        found[f"{stage(step).state}Args"] = step_args_intrinsic(deployment, step)
    return found


CREATE_CLUSTER_STATE = "CreateCluster"
IDLE_TIMEOUT_STATE = "SetIdleTimeout"
# The Step Functions guide's createCluster integration ("Create and manage Amazon EMR clusters
# with Step Functions") lists no AutoTerminationPolicy, and CreateStateMachine has rejected it
# ("The field "AutoTerminationPolicy" is not supported by Step Functions"). The state machine
# gives it with EMR's PutAutoTerminationPolicy once the cluster id is known, an AWS SDK
# integration ("Learning to use AWS service SDK integrations in Step Functions").
CREATE_CLUSTER_ONLY = frozenset({"AutoTerminationPolicy"})


def create_cluster_parameters(request: Mapping[str, Any]) -> dict[str, Any]:
    """The CreateCluster Task's parameters for a RunJobFlow request of ``emr.cluster_config``
    without a run id: all but the idle policy, tagged with the execution's run id."""
    params = {k: v for k, v in request.items() if k not in CREATE_CLUSTER_ONLY}
    params["Tags"] = [*request["Tags"], RUN_TAG]
    return params


def cluster_request(definition: Mapping[str, Any]) -> dict[str, Any]:
    """The RunJobFlow request the deployed cluster stands for (``emr.cluster_config`` without a
    run id): the rendered definition's CreateCluster parameters, less the run-id tag each
    execution fills in, with the idle policy its SetIdleTimeout gives the cluster. The
    notebooks send this very request, with their run's tag (``emr.ClusterSpec.from_request``
    reads it back)."""
    states = definition["States"]
    request = dict(states[CREATE_CLUSTER_STATE]["Parameters"])
    request["Tags"] = [t for t in request["Tags"] if t.get("Key") != RUN_ID_TAG]  # the run's own
    request["AutoTerminationPolicy"] = dict(
        states[IDLE_TIMEOUT_STATE]["Parameters"]["AutoTerminationPolicy"]
    )
    return request


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return json.loads(path.read_text())


def render(
    deployment: Deployment,
    spec: ClusterSpec | None = None,
    timing: Timing | None = None,
    template: Path = TEMPLATE,
) -> dict[str, Any]:
    return substitute(load_template(template), values(deployment, spec, timing))


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # next | catch | choice | default | branch


def iter_states(definition: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state, nested ones (Parallel branches, Map processors) included."""
    for name, state in definition["States"].items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from iter_states(branch)
        if "ItemProcessor" in state:
            yield from iter_states(state["ItemProcessor"])


def edges(definition: Mapping[str, Any]) -> list[Edge]:
    """The top-level transitions; a Parallel or Map is one node (its inside cannot jump out)."""
    found: list[Edge] = []
    for name, state in definition["States"].items():
        if "Next" in state:
            found.append(Edge(name, state["Next"], "next"))
        for rule in state.get("Choices", []):
            found.append(Edge(name, rule["Next"], "choice"))
        if "Default" in state:
            found.append(Edge(name, state["Default"], "default"))
        for handler in state.get("Catch", []):
            found.append(Edge(name, handler["Next"], "catch"))
    return found


def successors(found: Iterable[Edge], *, reverse: bool = False) -> dict[str, list[str]]:
    """State -> the states its transitions lead to (``reverse``: the states that lead to it)."""
    out: dict[str, list[str]] = {}
    for edge in found:
        source, target = (edge.target, edge.source) if reverse else (edge.source, edge.target)
        out.setdefault(source, []).append(target)
    return out


def end_states(definition: Mapping[str, Any]) -> list[str]:
    return [
        name
        for name, state in definition["States"].items()
        if state.get("End") or state["Type"] in ("Succeed", "Fail")
    ]


def terminates_cluster(state: Mapping[str, Any]) -> bool:
    return str(state.get("Resource", "")).startswith(TERMINATE_RESOURCE)


def paths_avoiding_terminate(definition: Mapping[str, Any], start: str) -> list[list[str]]:
    """Every acyclic path from ``start`` to an end state that passes no terminate-cluster task.

    Loops (the crawler poll) are walked once: a cycle cannot add a terminate the path lacks.
    """
    states = definition["States"]
    out = successors(edges(definition))
    ends = set(end_states(definition))
    found: list[list[str]] = []

    def walk(name: str, path: list[str]) -> None:
        if terminates_cluster(states[name]):
            return
        path = [*path, name]
        if name in ends:
            found.append(path)
        for target in dict.fromkeys(out.get(name, [])):
            if target not in path:
                walk(target, path)

    walk(start, [])
    return found
