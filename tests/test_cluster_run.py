"""The shipped step scripts run the way an EMR 7 cluster runs them, and every S3 request their
file-system operations cause is allowed by the rendered instance-role policy.

As on the cluster: one ``spark-submit --py-files rental_kpis.zip emr_steps/<step>.py`` per
step, the driver and the workers on the cluster's Python (3.9 on emr-7.x: "Amazon EMR release
7.x", "Python in AL2023"), the library only from the zip, and the lake reached through Hadoop's
FileSystem as EMRFS is (a ``viewfs://`` mount of a local folder, so ``spark.fs`` takes its
object-store path, not the local ``switch``). Every file-system call of the whole process tree
on the lake is recorded (``lake_recorder``) and mapped to S3 requests (``aws.emrfs``).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from iam_evaluator import allowed
from lake_recorder import read_operations, strace_missing, traced_command
from tables import assert_matches_generator

from rental_kpis.aws import iam, permissions
from rental_kpis.aws.emrfs import LakeOperation
from rental_kpis.aws.names import Deployment
from rental_kpis.devtools.datagen import generate
from rental_kpis.layout import Lake
from rental_kpis.local.raw_zone import load_raw
from rental_kpis.local.submit import spark_submit_command
from rental_kpis.project import EMR_STEPS_DIR, build_library_zip
from rental_kpis.spark.session import local_environment, quick_start_conf, with_class_archive
from rental_kpis.stages import SPARK_STAGES

CLUSTER_PYTHON = (3, 9)
# Set by .ci/run: there, a missing interpreter or tracer fails instead of skipping.
REQUIRED_ENV = "RENTAL_KPIS_CLUSTER_RUN_REQUIRED"
PYTHON_ENV = "RENTAL_KPIS_CLUSTER_PYTHON"
MOUNT = "bucket"  # the lake's root is viewfs://lake/bucket
D = Deployment("rental-kpis-cluster-test", "eu-west-1", "123456789012")


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRED_ENV):
        pytest.fail(reason)
    pytest.skip(reason)


def _version(python: str) -> tuple[int, int] | None:
    try:
        done = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError:
        return None
    parts = done.stdout.split()
    return (int(parts[0]), int(parts[1])) if done.returncode == 0 and len(parts) == 2 else None


def find_cluster_python() -> str | None:
    """A Python 3.9: ``$RENTAL_KPIS_CLUSTER_PYTHON``, pyenv's 3.9 versions, or python3.9."""
    chosen = os.environ.get(PYTHON_ENV)
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [chosen] if chosen else []
    candidates += [str(p) for p in sorted(pyenv.glob("3.9*/bin/python3.9"), reverse=True)]
    candidates += ["python3.9"]
    return next((c for c in candidates if _version(c) == CLUSTER_PYTHON), None)


@dataclass
class ClusterRun:
    lake: Lake
    folder: Path
    raw: Path
    python: str
    operations: set[LakeOperation]


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory) -> ClusterRun:
    python = find_cluster_python()
    if python is None:
        _unavailable(
            "no Python 3.9 here (set RENTAL_KPIS_CLUSTER_PYTHON): the steps' run under the "
            "cluster's Python is not checked"
        )
    missing = strace_missing()
    if missing:
        _unavailable(f"{missing}: the steps' file operations cannot be recorded")
    base = tmp_path_factory.mktemp("cluster")
    raw, folder = base / "raw", base / "lake"
    generate(raw, 1_000, seed=11, defect_rate=0.003)
    load_raw(raw, Lake(str(folder)))
    for made in [*folder.iterdir(), folder / "raw" / "_staging"]:  # the bucket after setup:
        if made.name != "raw":  # the raw zone (the scripts are not on the lake's file system)
            shutil.rmtree(made) if made.is_dir() else made.unlink()
    library = build_library_zip(base / "zip")
    env = local_environment()
    env.pop("PYTHONPATH", None)  # the library comes from the zip only, as on EMR
    conf = {
        **quick_start_conf(),
        "spark.pyspark.python": python,
        "spark.pyspark.driver.python": python,
        f"spark.hadoop.fs.viewfs.mounttable.lake.link./{MOUNT}": folder.resolve().as_uri(),
    }
    conf = with_class_archive(conf, env["JAVA_HOME"])
    root = f"viewfs://lake/{MOUNT}"
    for step in SPARK_STAGES:
        args = ["--lake-root", root, "--run-id", "cluster"]
        command = spark_submit_command(EMR_STEPS_DIR / f"{step}.py", args, [library], conf=conf)
        done = subprocess.run(
            traced_command(command, base / "trace" / step),
            env=env,
            cwd=base,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"{step}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    operations = set().union(
        *(read_operations(base / "trace" / step, folder) for step in SPARK_STAGES)
    )
    return ClusterRun(Lake(str(folder)), folder, raw, python, operations)


def it_runs_the_shipped_steps_on_the_clusters_python(cluster_run):
    for step in SPARK_STAGES:
        summary = json.loads(Path(cluster_run.lake.run_summary("cluster", step)).read_text())
        assert summary["status"] == "succeeded"
        assert summary["versions"]["python"].startswith("3.9."), cluster_run.python
    assert_matches_generator(cluster_run.raw, cluster_run.lake, "cluster")


def it_records_what_the_steps_do_on_the_lake(cluster_run):
    """The recording is complete enough to mean something: each step's reads and writes."""
    kinds = {(op.kind, op.key.split("/")[0]) for op in cluster_run.operations}
    assert {("read", "raw"), ("read", "curated"), ("write", "curated")} <= kinds
    assert {("write", "rejected"), ("write", "processed"), ("write", "runs")} <= kinds
    assert {("rename", "processed"), ("delete", "_switch"), ("list", "_switch")} <= kinds
    assert not [
        op
        for op in cluster_run.operations
        if op.key.startswith("raw/") and op.kind not in ("read", "stat", "list")
    ]


def _denied(policy: dict, calls: list[permissions.Call]) -> list[str]:
    return [str(c) for c in calls if not allowed(policy, c.action, c.resource, c.context)]


def it_allows_every_s3_request_of_the_recorded_steps(cluster_run):
    calls = permissions.instance_role_calls(D, cluster_run.operations)
    policy = iam.policies_by_principal(D)[permissions.EC2]
    assert _denied(policy, calls)[:20] == []


def it_needs_every_statement_and_resource_of_the_instance_role(cluster_run):
    """Least privilege, proven: without any one statement, or any one resource of one, some
    request of the recorded steps (or of EMR's script fetch and log push) is denied."""
    calls = permissions.instance_role_calls(D, cluster_run.operations)
    policy = iam.policies_by_principal(D)[permissions.EC2]
    for index, statement in enumerate(policy["Statement"]):
        cut = copy.deepcopy(policy)
        del cut["Statement"][index]
        assert _denied(cut, calls), f"nothing needs {statement['Sid']}"
        resources = statement["Resource"]
        for resource in resources if isinstance(resources, list) else []:
            cut = copy.deepcopy(policy)
            cut["Statement"][index]["Resource"].remove(resource)
            assert _denied(cut, calls), f"nothing needs {resource} in {statement['Sid']}"
