"""The walkthrough on AWS: the same operations as ``LocalBackend`` on S3, EMR, Glue, Athena and
Step Functions. Every AWS call lives in ``rental_kpis.aws``; this class only strings them
together and shapes frames for the notebooks (``rental-kpis aws setup`` made the resources).

Every cluster it starts is the deployment's (``deploy.deployed_cluster``: the one the state
machine starts), and a run is computed once: notebook 03 completes the run notebook 02 started
on EMR (crawl, queries) instead of starting the state machine, and its second cluster, again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from rental_kpis import queries
from rental_kpis.aws import athena, deploy, emr, glue, s3, stepfunctions
from rental_kpis.aws.sts import deployment_for, resolve_region, session_for
from rental_kpis.errors import NoRunYet, RunFailed, UsageError
from rental_kpis.layout import DATASETS, TABLES, check_run_id, is_raw_data_file
from rental_kpis.stages import SPARK_STAGES, STAGES
from rental_kpis.walkthrough.tables import (
    by_key,
    catalog_frame,
    execution_timeline,
    known_table,
    layout_table,
    raw_check,
    run_facts,
    stage_timeline,
    stages_of,
    summary_record,
)

if TYPE_CHECKING:
    from rental_kpis.aws.emr import ClusterSpec
    from rental_kpis.aws.names import Deployment
    from rental_kpis.aws.sts import Session

# What completes a run whose Spark steps succeeded on EMR, in order: the local backend's stages
# after the steps. The state machine's notice (SNS) is its own: a notebook shows the outcome.
COMPLETION_STAGES: tuple[str, ...] = ("crawl", "queries")
RUN_RECORD = "run.json"
NO_DEFAULT: Any = object()


class AwsBackend:
    """The same operations on S3, EMR, Glue, Athena and Step Functions. Costs money while the
    EMR cluster runs."""

    name = "aws"

    def __init__(
        self,
        bucket: str,
        region: str | None,
        raw: str | Path,
        session: Session | None = None,
    ) -> None:
        """``region`` empty: the AWS configuration's. A bucket that lives in another region
        than the one given is refused: every other resource setup made is in the bucket's."""
        region = resolve_region(region or (session.region_name if session else None))
        self.session = session or session_for(region)
        self.deployment: Deployment = deployment_for(bucket, region, self.session)
        where = s3.bucket_region(self.deployment, self.session)
        if where is not None and where != region:
            raise UsageError(
                f"bucket {bucket} is in {where}, not {region}: set region = {where!r} "
                "(the region `rental-kpis aws setup` ran in)"
            )
        self.lake = self.deployment.lake
        self.raw = Path(raw)

    def where(self) -> str:
        return f"s3://{self.deployment.bucket} in {self.deployment.region}"

    def layout(self) -> pd.DataFrame:
        return layout_table(self.lake)

    def connectivity(self) -> pd.DataFrame:
        """Who we are, and that each service the pipeline uses answers for this deployment."""
        checks = deploy.connectivity(self.deployment, self.session)
        return pd.DataFrame(checks, columns=["check", "result"]).set_index("check")

    def processed(self, name: str) -> pd.DataFrame:
        """A KPI table read straight from the processed zone on S3, sorted by its key."""
        return by_key(s3.read_parquet(self.lake.processed(known_table(name)) + "/", self.session))

    def rental_pairs(self) -> pd.DataFrame:
        """Pickup and dropoff location of every valid rental, from the curated zone on S3."""
        uri = self.lake.curated("rental_transactions") + "/"
        return s3.read_parquet(uri, self.session, columns=["pickup_location", "dropoff_location"])

    def upload_raw(self) -> pd.DataFrame:
        """Upload raw CSV, step scripts and library zip; unchanged files are skipped."""
        uploaded = set(s3.upload_inputs(self.deployment, self.session, self.raw))
        keys = self._keys("raw/") + self._keys("scripts/")
        return pd.DataFrame([{"key": k, "uploaded now": k in uploaded} for k in keys]).set_index(
            "key"
        )

    def verify_raw(self) -> pd.DataFrame:
        files = []
        for key in self._keys("raw/"):
            parts = key.split("/", 2)  # raw/<dataset>/<file>
            if len(parts) == 3 and parts[1] in DATASETS and is_raw_data_file(parts[2]):
                body = s3.read_bytes(self.deployment, self.session, key)
                files.append((parts[1], parts[2], body))
        return raw_check(files)

    def _keys(self, prefix: str) -> list[str]:
        return s3.list_keys(self.deployment, self.session, prefix)

    def cluster(self) -> ClusterSpec:
        """The deployment's cluster, as ``rental-kpis aws setup`` recorded it in the state
        machine: every cluster this backend starts is built from it."""
        spec = deploy.deployed_cluster(self.deployment, self.session)
        if spec is None:
            d = self.deployment
            raise UsageError(
                f"no state machine {d.state_machine} in {d.region}: run `rental-kpis aws setup "
                f"--bucket {d.bucket} --region {d.region}` first (it records the cluster to use)"
            )
        return spec

    def cluster_config(self) -> dict[str, Any]:
        """The RunJobFlow request of the deployment's cluster (what ``run_steps`` sends)."""
        return emr.cluster_config(self.deployment, self.cluster())

    def run_steps(
        self,
        run_id: str,
        spark: object = None,
        poll_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        role_wait: emr.RoleWait | None = None,
    ) -> pd.DataFrame:
        """Start the deployment's cluster (``cluster``), run validate_raw and wait for it, check
        it COMPLETED, then the two KPI steps side by side; terminate the cluster whatever
        happens. A step that does not complete raises ``EmrStepFailed`` with EMR's reason and
        the step's log, and nothing after it runs (the KPI steps would read missing or stale
        ``curated/``). Returns the three steps' timeline. ``spark`` (the notebook's session) is
        not used: the cluster runs the steps. While EMR does not accept the roles setup has just
        made, the cluster's creation waits as ``role_wait`` says (``emr.RoleWait``; by default
        about a minute, one printed line per wait) and then raises ``ClusterRolesNotReady``."""
        d, session = self.deployment, self.session
        first, rest = SPARK_STAGES[0], SPARK_STAGES[1:]
        check_run_id(run_id)  # before a cluster starts: the id names S3 keys and steps
        if len(self._succeeded_steps(run_id)) == len(SPARK_STAGES):
            return self.run_timeline(run_id)  # the cell run again: shown, not run again
        wait = role_wait or emr.RoleWait(say=print)
        cluster = emr.create_cluster(d, self.cluster(), session=session, wait=wait, run_id=run_id)
        ids: dict[str, str] = {}
        try:
            for batch in ((first,), rest):
                submitted = emr.add_steps(d, cluster, run_id, steps=batch, session=session)
                ids.update(submitted)
                emr.wait_for_steps(
                    d, cluster, submitted, poll_seconds=poll_seconds, session=session, sleep=sleep
                )
                emr.require_completed(d, cluster, submitted, session=session)
        finally:
            emr.terminate_cluster(d, cluster, session=session)
        return stage_timeline(emr.step_statuses(d, cluster, ids, session=session))

    def pending_stages(self, run_id: str) -> tuple[str, ...]:
        """The stages ``run_pipeline`` would run for ``run_id``: after its three Spark steps
        succeeded on EMR, the completion stages not yet succeeded; a run of the state machine,
        none (it runs by itself); any other run id, every stage (the state machine runs it)."""
        if stepfunctions.execution_exists(self.deployment, self.session, check_run_id(run_id)):
            return ()
        if len(self._succeeded_steps(run_id)) < len(SPARK_STAGES):
            return tuple(s.name for s in STAGES)
        done = (self._run_record(run_id) or {}).get("stages", {})
        return tuple(s for s in COMPLETION_STAGES if done.get(s, {}).get("status") != "succeeded")

    def run_pipeline(
        self,
        run_id: str,
        poll_seconds: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> pd.DataFrame:
        """Complete run ``run_id`` and return its whole timeline, as ``LocalBackend`` does:
        a run is computed once, and no second cluster starts for it.

        - Its three Spark steps succeeded on EMR (notebook 02; their summaries are under
          ``runs/<run_id>/``): the completion stages not yet succeeded (crawl, named queries)
          run here with this session, and ``runs/<run_id>/run.json`` records every stage. A
          stage that fails is recorded so and raises (``CrawlFailed``, ``QueryFailed``).
        - An execution of the state machine is named ``run_id``: it is followed to its end.
        - Otherwise the state machine runs it whole (the deployment's cluster, its notice) and
          is followed. An execution that does not succeed raises ``RunFailed``."""
        d, session = self.deployment, self.session
        check_run_id(run_id)
        if stepfunctions.execution_exists(d, session, run_id):
            return self._follow(d.execution_arn(run_id), run_id, poll_seconds)
        summaries = self._succeeded_steps(run_id)
        if len(summaries) < len(SPARK_STAGES):
            arn = stepfunctions.start_run(d, session, run_id)
            return self._follow(arn, run_id, poll_seconds)
        record = self._complete(run_id, summaries, poll_seconds, sleep)
        return stage_timeline(stages_of(record))

    def _follow(self, arn: str, run_id: str, poll_seconds: float) -> pd.DataFrame:
        outcome = stepfunctions.follow_run(arn, self.session, poll_seconds=poll_seconds)
        d = self.deployment
        for line in stepfunctions.terminate_lost_clusters(d, self.session, run_id, outcome):
            print(line)
        if outcome.status != "SUCCEEDED":
            raise RunFailed(run_id, outcome.status, outcome.error, outcome.cause)
        return execution_timeline(outcome.events)  # the history follow_run already read

    def _succeeded_steps(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Spark step -> its summary, for the steps of ``run_id`` that succeeded (a step writes
        its summary only then, with status "succeeded")."""
        present = set(self._keys(f"runs/{run_id}/"))
        found = {}
        for step in SPARK_STAGES:
            if self.lake.key(self.lake.run_summary(run_id, step)) in present:
                summary = self.step_summary(run_id, step)
                if summary.get("status") == "succeeded":
                    found[step] = summary
        return found

    def _complete(
        self,
        run_id: str,
        summaries: dict[str, dict[str, Any]],
        poll_seconds: float,
        sleep: Callable[[float], None],
    ) -> dict[str, Any]:
        """Run the completion stages ``run_id`` lacks, recording each in its run record."""
        record = self._run_record(run_id) or {"run_id": run_id, "stages": {}}
        stages = {step: _summary_stage(summary) for step, summary in summaries.items()}
        stages.update({s: f for s, f in record["stages"].items() if s in COMPLETION_STAGES})
        record.update(
            status="running",
            started_at=min(f["started_at"] for f in stages.values()),
            finished_at=None,
            error=None,
            stages=stages,
        )
        for name in COMPLETION_STAGES:
            if stages.get(name, {}).get("status") == "succeeded":
                continue
            started = datetime.now(timezone.utc)
            stages[name] = {"status": "running", "started_at": started.isoformat()}
            try:
                self._run_stage(name, poll_seconds, sleep)
            except Exception as error:  # recorded whatever it is, then raised as it is
                stages[name] = _ended(started, "failed")
                record.update(status="failed", finished_at=_now(), error=f"{name}: {error}")
                self._write_record(run_id, record)
                raise
            stages[name] = _ended(started, "succeeded")
        record.update(status="succeeded", finished_at=_now())
        self._write_record(run_id, record)
        return record

    def _run_stage(self, name: str, poll_seconds: float, sleep: Callable[[float], None]) -> None:
        if name == "crawl":
            glue.start_crawl_and_wait(
                self.deployment, self.session, poll_seconds=poll_seconds, sleep=sleep
            )
        elif name == "queries":
            for query in queries.all_queries():
                self.query(query.name)  # Athena keeps each result under query-results/
        else:
            raise ValueError(f"no completion stage {name!r}")

    def _run_record(self, run_id: str) -> dict[str, Any] | None:
        """``runs/<run_id>/run.json``, written when a run of notebook 02 was completed."""
        key = self.lake.key(self.lake.uri("runs", run_id, RUN_RECORD))
        if key not in self._keys(f"runs/{run_id}/"):
            return None
        return s3.read_json(self.deployment, self.session, key)

    def _write_record(self, run_id: str, record: dict[str, Any]) -> None:
        key = self.lake.key(self.lake.uri("runs", run_id, RUN_RECORD))
        s3.write_json(self.deployment, self.session, key, record)

    def step_summary(self, run_id: str, step: str) -> dict[str, Any]:
        key = self.lake.key(self.lake.run_summary(run_id, step))
        return s3.read_json(self.deployment, self.session, key)

    def has_raw(self) -> bool:
        """Every dataset has a data file under ``raw/`` in the bucket (notebook 01 uploaded)."""
        found = {key.split("/")[1] for key in self._keys("raw/") if key.count("/") == 2}
        return set(DATASETS) <= found

    def has_tables(self) -> bool:
        """Every KPI table has Parquet objects under ``processed/`` (a run's steps wrote it)."""
        keys = self._keys("processed/")
        return all(any(k.startswith(f"processed/{t}/") for k in keys) for t in TABLES)

    def current_run_id(self, default: Any = NO_DEFAULT) -> str:
        """The run that last wrote the tables: of the succeeded executions of the state machine
        and the runs whose three step summaries are on S3 (notebook 02's), the one that
        finished last; ``default`` (else NoRunYet) when there is none."""
        finished = {run: _as_time(end) for run, end in self._summarised_runs().items() if end}
        execution = stepfunctions.latest_succeeded(self.deployment, self.session)
        if execution is not None:
            desc = stepfunctions.describe(self.deployment, self.session, execution)
            finished[execution] = _as_time(desc.get("stopDate") or desc["startDate"])
        if finished:
            return max(finished, key=lambda run: finished[run])
        if default is not NO_DEFAULT:
            return default
        raise NoRunYet(
            f"no succeeded execution of {self.deployment.state_machine} and no run with "
            f"all step summaries under s3://{self.deployment.bucket}/runs/"
        )

    def _summarised_runs(self) -> dict[str, str]:
        """Run id -> when its last step finished, for runs whose every Spark step left a
        summary."""
        found: dict[str, dict[str, Any]] = {}
        for key in self._keys("runs/"):
            parts = key.split("/")  # runs/<run_id>/<step>.json
            if len(parts) == 3 and parts[2].removesuffix(".json") in SPARK_STAGES:
                found.setdefault(parts[1], {})[parts[2].removesuffix(".json")] = key
        return {
            run: max(self.step_summary(run, s).get("finished_at", "") for s in SPARK_STAGES)
            for run, steps in found.items()
            if set(steps) == set(SPARK_STAGES)
        }

    def run_facts(self, run_id: str) -> pd.DataFrame:
        """A state-machine run's facts from its execution; a run of notebook 02 (EMR steps
        driven directly, no execution of that name) from its run record when notebook 03
        completed it, else from its step summaries on S3."""
        summaries = {s: self.step_summary(run_id, s) for s in SPARK_STAGES}
        if not stepfunctions.execution_exists(self.deployment, self.session, run_id):
            record = self._run_record(run_id) or summary_record(run_id, summaries)
            return run_facts(record, summaries)
        desc = stepfunctions.describe(self.deployment, self.session, run_id)
        timeline = self.run_timeline(run_id)
        record = {
            "run_id": run_id,
            "status": desc["status"].lower(),
            "started_at": str(desc["startDate"]),
            "finished_at": str(desc.get("stopDate", "")),
            "stages": {
                row.stage: {"status": row.status, "seconds": row.seconds}
                for row in timeline.itertuples()
            },
        }
        return run_facts(record, summaries)

    def run_timeline(self, run_id: str) -> pd.DataFrame:
        """The execution's states; for a run without execution, the stages of its run record
        (notebook 03 completed it), else its steps from the summaries."""
        if stepfunctions.execution_exists(self.deployment, self.session, run_id):
            return execution_timeline(stepfunctions.history(self.deployment, self.session, run_id))
        record = self._run_record(run_id)
        if record is not None:
            return stage_timeline(stages_of(record))
        summaries = {s: self.step_summary(run_id, s) for s in SPARK_STAGES}
        return stage_timeline(
            [
                {
                    "stage": step,
                    "status": summary.get("status", "succeeded"),
                    "started": summary.get("started_at"),
                    "finished": summary.get("finished_at"),
                }
                for step, summary in summaries.items()
            ]
        )

    def crawl(
        self,
        poll_seconds: float = 15.0,
        timeout_seconds: float = 900.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> pd.DataFrame:
        """Start the Glue crawler, wait until this crawl has ended, check it succeeded
        (``CrawlFailed`` with Glue's message and the log's place otherwise), list the catalog."""
        glue.start_crawl_and_wait(
            self.deployment,
            self.session,
            poll_seconds=poll_seconds,
            timeout_seconds=timeout_seconds,
            sleep=sleep,
        )
        return self.catalog()

    def catalog(self) -> pd.DataFrame:
        return catalog_frame(glue.tables(self.deployment, self.session))

    def query(self, name: str) -> pd.DataFrame:
        return athena.run_named_query(
            name, workgroup=self.deployment.workgroup, boto3_session=self.session
        )

    def query_plan(self, name: str) -> str:
        """Athena's plan for named query ``name`` (EXPLAIN: no data read)."""
        return athena.explain_named_query(
            name,
            workgroup=self.deployment.workgroup,
            database=self.deployment.database,
            boto3_session=self.session,
        )

    def table(self, name: str) -> pd.DataFrame:
        return athena.run_sql(
            f'SELECT * FROM "{known_table(name)}"',
            label=name,
            workgroup=self.deployment.workgroup,
            database=self.deployment.database,
            boto3_session=self.session,
        )


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _as_time(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _ended(started: datetime, status: str) -> dict[str, Any]:
    ended = datetime.now(timezone.utc)
    return {
        "status": status,
        "started_at": started.isoformat(),
        "finished_at": ended.isoformat(),
        "seconds": round((ended - started).total_seconds(), 3),
    }


def _summary_stage(summary: dict[str, Any]) -> dict[str, Any]:
    """A Spark step's entry in a run record, from the summary the step wrote on EMR."""
    started, finished = summary["started_at"], summary["finished_at"]
    seconds = summary.get("timings_seconds", {}).get("total")
    if seconds is None:
        seconds = (_as_time(finished) - _as_time(started)).total_seconds()
    return {
        "status": "succeeded",
        "started_at": started,
        "finished_at": finished,
        "seconds": seconds,
    }
