"""All three steps on a real Spark cluster: a standalone master and worker on 127.0.0.1.

This is what proves that the zipped library ships to executors the way it will on EMR:
the executors are separate JVMs with their own Python workers, started by the worker.
"""

from __future__ import annotations

import os

from standalone_cluster import standalone_cluster
from tables import assert_same_table, read_table

from rental_kpis.devtools.datagen import generate
from rental_kpis.devtools.reference import run_reference
from rental_kpis.layout import TABLES
from rental_kpis.local.runner import run_local
from rental_kpis.stages import SPARK_STAGES


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def it_runs_every_step_on_a_standalone_cluster_and_stops_it(tmp_path):
    raw = tmp_path / "raw"
    generate(raw, 5_000, seed=3, defect_rate=0.001)
    with standalone_cluster(tmp_path / "cluster") as (master, pids):
        assert all(_alive(pid) for pid in pids)
        result = run_local(
            raw,
            tmp_path / "lake",
            run_id="cluster",
            master=master,
            driver_memory="1g",
            steps=SPARK_STAGES,
        )
    assert not any(_alive(pid) for pid in pids)
    assert [s.step for s in result.steps] == [
        "validate_raw",
        "vehicle_location_metrics",
        "user_transaction_metrics",
    ]
    work = tmp_path / "cluster" / "work"
    assert any(work.rglob("stderr")), "no executor ran on the worker"
    reference = run_reference(raw)
    for table in TABLES:
        assert_same_table(table, read_table(result.lake.processed(table)), reference.tables[table])
