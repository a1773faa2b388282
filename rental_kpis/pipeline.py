"""The local runner: put raw files in the lake, then spark-submit each step like EMR would.

Steps run as separate ``spark-submit`` processes of ``emr_steps/*.py`` with the library as a
zip (``--py-files``), never in-process, so a packaging fault shows up here, not on a cluster.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rental_kpis.errors import InputError, StepFailed
from rental_kpis.layout import DATASETS, Lake, new_run_id
from rental_kpis.spark import PROJECT_DIR, build_library_zip, spark_submit
from rental_kpis.stages import SPARK_STAGES

# Spark stages with a step script (later issues add the KPI steps).
AVAILABLE_STEPS: tuple[str, ...] = tuple(
    s for s in SPARK_STAGES if (PROJECT_DIR / "emr_steps" / f"{s}.py").exists()
)

EMR_STEPS_DIR = PROJECT_DIR / "emr_steps"


def load_raw(raw_dir: Path, lake: Lake) -> dict[str, int]:
    """Replace the lake's raw zone with the CSV files of ``raw_dir/<dataset>/``.

    Returns the number of files per dataset. A dataset with no CSV file is an error naming
    the folder, before any Spark process starts.
    """
    copied: dict[str, int] = {}
    for dataset in DATASETS:
        source = raw_dir / dataset
        files = sorted(source.glob("*.csv")) if source.is_dir() else []
        if not files:
            raise InputError(f"dataset {dataset!r}: no CSV files in {source}")
        target = Path(lake.raw(dataset))
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for path in files:
            shutil.copy2(path, target / path.name)
        copied[dataset] = len(files)
    return copied


def failure_detail(output: str) -> str:
    """The one line that says why a step failed: our ``error:`` line, else the last exception."""
    lines = output.splitlines()
    for line in lines:
        if line.startswith("error: "):
            return line[len("error: ") :]
    exceptions = [ln.strip() for ln in lines if re.match(r"^\s*[\w.]+(Error|Exception)\b", ln)]
    return exceptions[-1] if exceptions else (lines[-1] if lines else "no output")


@dataclass
class StepResult:
    step: str
    seconds: float
    summary: dict = field(default_factory=dict)


@dataclass
class RunResult:
    run_id: str
    lake: Lake
    steps: list[StepResult] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


def run_spark_step(
    step: str,
    lake: Lake,
    run_id: str,
    library_zip: Path,
    master: str = "local[*]",
    driver_memory: str = "2g",
) -> StepResult:
    """spark-submit ``emr_steps/<step>.py`` against ``lake``; raise StepFailed with the cause."""
    log = Path(lake.uri("runs", run_id, f"{step}.log"))
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    result = spark_submit(
        EMR_STEPS_DIR / f"{step}.py",
        ["--lake-root", lake.root, "--run-id", run_id],
        py_files=[library_zip],
        master=master,
        driver_memory=driver_memory,
        log_path=log,
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise StepFailed(step, result.returncode, failure_detail(result.output), str(log))
    summary_path = Path(lake.run_summary(run_id, step))
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return StepResult(step, seconds, summary)


def run_local(
    raw_dir: Path | None,
    lake_dir: Path,
    run_id: str | None = None,
    steps: Sequence[str] = AVAILABLE_STEPS,
    master: str = "local[*]",
    driver_memory: str = "2g",
    on_step: Callable[[str, str, StepResult | None], None] | None = None,
) -> RunResult:
    """Run ``steps`` in order on a local lake; ``raw_dir`` (if given) replaces the raw zone.

    ``on_step(step, event, result)`` is called with event "start" and "done", for progress.
    """
    lake = Lake(str(lake_dir))
    if raw_dir is not None:
        load_raw(Path(raw_dir), lake)
    result = RunResult(run_id or new_run_id(), lake)
    with tempfile.TemporaryDirectory(prefix="rental_kpis_zip_") as tmp:
        library_zip = build_library_zip(Path(tmp))
        for step in steps:
            if on_step:
                on_step(step, "start", None)
            step_result = run_spark_step(
                step, lake, result.run_id, library_zip, master, driver_memory
            )
            result.steps.append(step_result)
            if on_step:
                on_step(step, "done", step_result)
    return result
