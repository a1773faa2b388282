"""The walkthrough on AWS: the same operations as ``LocalBackend`` on S3, EMR, Glue, Athena and
Step Functions. Every AWS call lives in ``rental_kpis.aws``; this class only strings them
together and shapes frames for the notebooks (``rental-kpis aws setup`` made the resources).

Every cluster it starts is the deployment's (``deploy.deployed_cluster``: the one the state
machine starts)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from rental_kpis.aws import athena, deploy, emr, glue, s3, stepfunctions
from rental_kpis.aws.sts import deployment_for, resolve_region, session_for
from rental_kpis.errors import NoRunYet, RunFailed, UsageError
from rental_kpis.layout import DATASETS, check_run_id, is_raw_data_file
from rental_kpis.stages import SPARK_STAGES
from rental_kpis.walkthrough.tables import (
    catalog_frame,
    execution_timeline,
    known_table,
    layout_table,
    raw_check,
    run_facts,
    stage_timeline,
    summary_record,
)

if TYPE_CHECKING:
    from rental_kpis.aws.emr import ClusterSpec
    from rental_kpis.aws.names import Deployment
    from rental_kpis.aws.sts import Session


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
        return s3.read_parquet(self.lake.processed(known_table(name)) + "/", self.session)

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
    ) -> pd.DataFrame:
        """Start the deployment's cluster (``cluster``), run validate_raw and wait for it, check
        it COMPLETED, then the two KPI steps side by side; terminate the cluster whatever
        happens. A step that does not complete raises ``EmrStepFailed`` with EMR's reason and
        the step's log, and nothing after it runs (the KPI steps would read missing or stale
        ``curated/``). Returns the three steps' timeline. ``spark`` (the notebook's session) is
        not used: the cluster runs the steps."""
        d, session = self.deployment, self.session
        first, rest = SPARK_STAGES[0], SPARK_STAGES[1:]
        check_run_id(run_id)  # before a cluster starts: the id names S3 keys and steps
        cluster = emr.create_cluster(d, self.cluster(), session=session)
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

    def run_pipeline(self, run_id: str, poll_seconds: float = 10.0) -> pd.DataFrame:
        """Start the state machine, follow it to the end; returns the states' timeline."""
        arn = stepfunctions.start_run(self.deployment, self.session, check_run_id(run_id))
        outcome = stepfunctions.follow_run(arn, self.session, poll_seconds=poll_seconds)
        if outcome.status != "SUCCEEDED":
            raise RunFailed(run_id, outcome.status, outcome.error, outcome.cause)
        return execution_timeline(outcome.events)  # the history follow_run already read

    def step_summary(self, run_id: str, step: str) -> dict[str, Any]:
        key = self.lake.key(self.lake.run_summary(run_id, step))
        return s3.read_json(self.deployment, self.session, key)

    def latest_run_id(self) -> str:
        """The newest succeeded execution of the state machine (notebook 04, ``aws run``), else
        the newest run whose three step summaries are on S3 (notebook 02 on EMR directly)."""
        run_id = stepfunctions.latest_succeeded(self.deployment, self.session)
        if run_id is not None:
            return run_id
        complete = self._summarised_runs()
        if not complete:
            raise NoRunYet(
                f"no succeeded execution of {self.deployment.state_machine} and no run with "
                f"all step summaries under s3://{self.deployment.bucket}/runs/"
            )
        return max(complete, key=lambda run: complete[run])

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
        driven directly, no execution of that name) from its step summaries on S3."""
        summaries = {s: self.step_summary(run_id, s) for s in SPARK_STAGES}
        if not stepfunctions.execution_exists(self.deployment, self.session, run_id):
            return run_facts(summary_record(run_id, summaries), summaries)
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
        """The execution's states; for a run without execution, its steps from the summaries."""
        if stepfunctions.execution_exists(self.deployment, self.session, run_id):
            return execution_timeline(stepfunctions.history(self.deployment, self.session, run_id))
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

    def table(self, name: str) -> pd.DataFrame:
        return athena.run_sql(
            f'SELECT * FROM "{known_table(name)}"',
            label=name,
            workgroup=self.deployment.workgroup,
            database=self.deployment.database,
            boto3_session=self.session,
        )
