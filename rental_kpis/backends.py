"""One object per backend with the operations the sprint notebooks walk through.

A notebook says ``backend = open_backend("local", …)`` (or ``"aws"``) and then calls the same
methods either way: upload and verify the raw zone, run the Spark steps, crawl, query, run the
whole pipeline, read a run's facts. Every method returns a pandas frame or a plain dict that a
notebook cell shows as it is. Local: the lake folder, spark-submit, DuckDB. AWS: S3, EMR, Glue,
Athena and Step Functions through ``rental_kpis.aws``. Not used on EMR.
"""

from __future__ import annotations

import csv
import html
import io
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from rental_kpis.errors import RunFailed
from rental_kpis.layout import DATASETS, TABLES, ZONE_CONTENTS, ZONES, Lake
from rental_kpis.stages import SPARK_STAGES

if TYPE_CHECKING:
    import boto3

    from rental_kpis.aws.names import Deployment

DEFAULT_REGION = "us-east-1"


# ---------------------------------------------------------------- shared, pure


def layout_table(lake: Lake) -> pd.DataFrame:
    """Each zone of the lake, where it is, and what it holds (SPEC §2)."""
    rows = [{"zone": z, "location": lake.uri(z) + "/", "holds": ZONE_CONTENTS[z]} for z in ZONES]
    return pd.DataFrame(rows).set_index("zone")


def deployment_of(bucket: str, region: str) -> Deployment:
    """The names a deployment would get; the account id is a placeholder until AWS tells."""
    from rental_kpis.aws.names import Deployment

    return Deployment(bucket or "your-bucket", region)


def roles_table(deployment: Deployment) -> pd.DataFrame:
    """Each role, who may assume it, and how many actions its policy allows."""
    from rental_kpis.aws import iam

    trust = iam.trust_policies(deployment)
    rows = []
    for role, policy in iam.permission_policies(deployment).items():
        principals = [
            service
            for statement in trust[role]["Statement"]
            for service in _as_list(statement.get("Principal", {}).get("Service", []))
        ]
        rows.append(
            {
                "role": role,
                "assumed by": ", ".join(principals),
                "statements": len(policy["Statement"]),
                "actions": sum(len(_as_list(st["Action"])) for st in policy["Statement"]),
            }
        )
    return pd.DataFrame(rows).set_index("role")


def policy_table(deployment: Deployment) -> pd.DataFrame:
    """Every statement of every role: what it allows, on what, under which condition."""
    from rental_kpis.aws import iam

    rows = [
        {
            "role": role,
            "statement": st.get("Sid", ""),
            "actions": ", ".join(_as_list(st["Action"])),
            "resources": ", ".join(_as_list(st["Resource"])),
            "condition": json.dumps(st["Condition"]) if "Condition" in st else "",
        }
        for role, policy in iam.permission_policies(deployment).items()
        for st in policy["Statement"]
    ]
    return pd.DataFrame(rows)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def cluster_table(config: dict[str, Any]) -> pd.DataFrame:
    """The facts of an EMR RunJobFlow request a reader checks (release, size, roles, logs)."""
    groups = config["Instances"]["InstanceGroups"]
    facts = [
        ("name", config["Name"]),
        ("release", config["ReleaseLabel"]),
        ("applications", ", ".join(a["Name"] for a in config["Applications"])),
        *((f"{g['Name']} nodes", f"{g['InstanceCount']} x {g['InstanceType']}") for g in groups),
        ("steps at once", config["StepConcurrencyLevel"]),
        ("idle auto-termination", f"{config['AutoTerminationPolicy']['IdleTimeout']} s"),
        ("service role", config["ServiceRole"]),
        ("EC2 instance profile", config["JobFlowRole"]),
        ("logs", config["LogUri"]),
    ]
    return pd.DataFrame(facts, columns=["setting", "value"]).set_index("setting")


def steps_table(deployment: Deployment, run_id: str) -> pd.DataFrame:
    """Each EMR step and the command it runs (the same script and arguments run locally)."""
    from rental_kpis.aws import emr
    from rental_kpis.stages import stage

    rows = [
        {
            "step": step,
            "state": stage(step).state,
            "does": stage(step).description,
            "command": " ".join(emr.step_args(deployment, step, run_id)),
        }
        for step in SPARK_STAGES
    ]
    return pd.DataFrame(rows).set_index("step")


def inspect_csv(dataset: str, name: str, data: bytes) -> dict[str, Any]:
    """Records, header and missing SPEC §1 columns of one raw file, by the rules the validation
    step reads headers with (quoted newlines inside records respected)."""
    from rental_kpis.readers import parse_header
    from rental_kpis.schemas import missing_columns

    text = data.decode("utf-8", errors="replace")
    header = parse_header(text.partition("\n")[0].rstrip("\r"))
    reader = csv.reader(io.StringIO(text, newline=""))
    records = sum(1 for _ in reader) - (1 if text else 0)
    missing = missing_columns(dataset, header)
    return {
        "dataset": dataset,
        "file": name,
        "bytes": len(data),
        "rows": records,
        "columns": len(header),
        "missing columns": ", ".join(missing),
        "schema ok": not missing,
    }


def raw_check(files: Iterable[tuple[str, str, bytes]]) -> pd.DataFrame:
    """``inspect_csv`` over (dataset, file name, content); a dataset without files is a row too."""
    rows = [inspect_csv(dataset, name, data) for dataset, name, data in files]
    seen = {row["dataset"] for row in rows}
    rows += [
        {"dataset": d, "file": "(no CSV file)", "bytes": 0, "rows": 0, "columns": 0,
         "missing columns": "the whole dataset", "schema ok": False}
        for d in DATASETS if d not in seen
    ]  # fmt: skip
    rows.sort(key=lambda row: (DATASETS.index(row["dataset"]), row["file"]))  # SPEC §1 order
    return pd.DataFrame(rows)


def raw_verdict(check: pd.DataFrame) -> str:
    """One sentence for a ``raw_check`` that passed; InputError naming every failing file."""
    from rental_kpis.errors import InputError

    failing = check[~check["schema ok"]]
    if len(failing):
        where = "; ".join(
            f"{row['dataset']}/{row['file']}: missing {row['missing columns']}"
            for _, row in failing.iterrows()
        )
        raise InputError(f"raw files without the SPEC §1 columns: {where}")
    return (
        f"{len(check)} files, {check['rows'].sum():,} rows: every dataset has the SPEC §1 columns."
    )


@dataclass(frozen=True)
class SourceBeside:
    """A function's source next to a result table: what a notebook shows to teach a
    transform (the code on the left, what it computed on the right). Both escaped."""

    name: str
    source: str
    result: pd.DataFrame

    def _repr_html_(self) -> str:
        code = html.escape(self.source)
        table = self.result.to_html(index=False, escape=True)
        return (
            '<div style="display:flex; gap:1.5em; align-items:flex-start; flex-wrap:wrap">'
            f'<pre style="flex:1 1 28em; margin:0; font-size:85%"><code>{code}</code></pre>'
            f'<div style="flex:1 1 24em; overflow-x:auto">{table}</div></div>'
        )


def source_beside(function: Callable[..., Any], result: pd.DataFrame) -> SourceBeside:
    """``function``'s source (``inspect.getsource``) beside ``result``."""
    import inspect

    return SourceBeside(function.__name__, inspect.getsource(function), result)


def rounded(frame: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """Floats rounded for reading; money in the tables is never rounded (SPEC §4)."""
    return frame.round({c: digits for c in frame.select_dtypes("float").columns})


def local_raw_uri(env: Backend, dataset: str) -> str:
    """Where a notebook's own local SparkSession reads ``dataset`` from: the lake's raw zone
    locally; on AWS the local raw folder that sprint 1 uploaded (a laptop's Spark has no S3
    connector, and the teaching cells need no cluster)."""
    return env.lake.raw(dataset) if env.name == "local" else str(Path(env.raw) / dataset)


def _seconds_between(start: str | datetime, end: str | datetime) -> float:
    def as_time(value: str | datetime) -> datetime:
        return value if isinstance(value, datetime) else datetime.fromisoformat(value)

    return (as_time(end) - as_time(start)).total_seconds()


def stage_timeline(stages: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows (stage, status, started, finished) as a timeline relative to the first start.

    Columns: stage, status, start_s, end_s, seconds: what ``charts.timeline`` draws.
    """
    if not stages:
        return pd.DataFrame(columns=["stage", "status", "start_s", "end_s", "seconds"])
    origin = min(s["started"] for s in stages)
    rows = []
    for item in stages:
        finished = item.get("finished") or item["started"]
        start_s = _seconds_between(origin, item["started"])
        end_s = _seconds_between(origin, finished)
        rows.append(
            {
                "stage": item["stage"],
                "status": item["status"],
                "start_s": round(start_s, 3),
                "end_s": round(end_s, 3),
                "seconds": round(end_s - start_s, 3),
            }
        )
    return pd.DataFrame(rows)


def execution_timeline(events: list[dict[str, Any]]) -> pd.DataFrame:
    """A Step Functions execution history as a timeline: one row per state entered, ended by
    its exit event. A state entered again (the crawler poll) or in several Map iterations at
    once gives one row each; exits close the oldest open entry of that name. States still
    open when the execution ends (a Succeed or Fail state) end with it."""
    open_states: dict[str, list[dict[str, Any]]] = {}
    stages: list[dict[str, Any]] = []
    for event in events:
        entered = event.get("stateEnteredEventDetails")
        exited = event.get("stateExitedEventDetails")
        kind = event.get("type", "")
        if entered:
            item = {"stage": entered["name"], "status": "running", "started": event["timestamp"]}
            open_states.setdefault(entered["name"], []).append(item)
            stages.append(item)
        elif exited and open_states.get(exited["name"]):
            item = open_states[exited["name"]].pop(0)
            item.update(status="succeeded", finished=event["timestamp"])
        elif kind.startswith("Execution") and kind != "ExecutionStarted":
            status = "succeeded" if kind == "ExecutionSucceeded" else "failed"
            for item in (i for items in open_states.values() for i in items):
                item.update(status=status, finished=event["timestamp"])
            open_states.clear()
    return stage_timeline(stages)


def run_facts(record: dict[str, Any], summaries: dict[str, dict]) -> pd.DataFrame:
    """Run id, status, times, versions and stage timings: the report's last table."""
    versions = next((s["versions"] for s in summaries.values() if s.get("versions")), {})
    facts = [
        ("run id", record["run_id"]),
        ("status", record["status"]),
        ("started (UTC)", record.get("started_at") or ""),
        ("finished (UTC)", record.get("finished_at") or ""),
        *((f"{name} version", version) for name, version in versions.items()),
        *(
            (f"stage {name}", f"{facts.get('seconds', 0):.1f} s ({facts['status']})")
            for name, facts in record.get("stages", {}).items()
        ),
    ]
    return pd.DataFrame(facts, columns=["fact", "value"]).set_index("fact")


def _stages_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"stage": name, "status": f["status"], "started": f["started_at"],
         "finished": f.get("finished_at")}
        for name, f in record.get("stages", {}).items() if f.get("started_at")
    ]  # fmt: skip


# ---------------------------------------------------------------- local


class LocalBackend:
    """The lake folder, spark-submit of the step scripts, the DuckDB catalog."""

    name = "local"

    def __init__(
        self, lake: str | Path, raw: str | Path, bucket: str = "", region: str = DEFAULT_REGION
    ) -> None:
        self.lake = Lake(str(lake))
        self.raw = Path(raw)
        # What an AWS deployment would be named: the IAM and EMR views show it locally too.
        self.deployment = deployment_of(bucket, region)

    def where(self) -> str:
        return f"local lake {self.lake.root}"

    def layout(self) -> pd.DataFrame:
        return layout_table(self.lake)

    def connectivity(self) -> pd.DataFrame:
        """What the pipeline needs here: a writable lake folder, the raw files, a Java for Spark."""
        from rental_kpis.spark import find_java_home

        root = Path(self.lake.root)
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".write-check"
        probe.write_text("ok")
        probe.unlink()
        checks = [
            ("lake folder writable", str(root)),
            ("raw data present", ", ".join(d for d in DATASETS if (self.raw / d).is_dir())),
            ("Java for Spark", find_java_home()),
        ]
        return pd.DataFrame(checks, columns=["check", "result"]).set_index("check")

    def upload_raw(self) -> pd.DataFrame:
        """Copy ``raw/<dataset>/*.csv`` into the lake's raw zone (the local S3 upload)."""
        from rental_kpis.pipeline import load_raw

        copied = load_raw(self.raw, self.lake)
        return pd.DataFrame(
            [{"dataset": d, "files": n, "to": self.lake.raw(d) + "/"} for d, n in copied.items()]
        ).set_index("dataset")

    def verify_raw(self) -> pd.DataFrame:
        files = [
            (dataset, path.name, path.read_bytes())
            for dataset in DATASETS
            for path in sorted(Path(self.lake.raw(dataset)).glob("*.csv"))
        ]
        return raw_check(files)

    def run_steps(self, run_id: str) -> pd.DataFrame:
        """spark-submit the three step scripts, as EMR steps run; returns their timeline."""
        from rental_kpis.pipeline import run_local

        run_local(None, Path(self.lake.root), run_id=run_id, steps=SPARK_STAGES)
        return self.run_timeline(run_id)

    def run_pipeline(self, run_id: str) -> pd.DataFrame:
        """The whole pipeline (steps, crawl, queries) from the raw zone; returns its timeline.

        A run that already exists is continued, not repeated: only its stages that have not
        succeeded run (after sprint 2's ``run_steps``: crawl and queries), so the demo runs
        the Spark steps once and the run ends "succeeded" with every stage in one record.
        """
        from rental_kpis.pipeline import run_local

        pending = self.pending_stages(run_id)
        if pending:
            run_local(None, Path(self.lake.root), run_id=run_id, steps=pending)
        return self.run_timeline(run_id)

    def pending_stages(self, run_id: str) -> tuple[str, ...]:
        """The stages of a whole local run that run ``run_id`` has not yet succeeded in."""
        from rental_kpis.pipeline import LOCAL_STAGES

        path = Path(self.lake.uri("runs", run_id, "run.json"))
        done = json.loads(path.read_text())["stages"] if path.exists() else {}
        return tuple(s for s in LOCAL_STAGES if done.get(s, {}).get("status") != "succeeded")

    def rental_pairs(self) -> pd.DataFrame:
        """Pickup and dropoff location of every valid rental (the curated zone): what the
        report's one-way share counts; no KPI table keeps the pair."""
        return self.curated("rental_transactions", ["pickup_location", "dropoff_location"])

    def curated(self, dataset: str, columns: list[str]) -> pd.DataFrame:
        """``columns`` of a curated dataset, read straight from its Parquet files."""
        import duckdb

        from rental_kpis.schemas import column_names

        unknown = [c for c in columns if c not in column_names(dataset)]
        if unknown:
            raise KeyError(f"{dataset} has no column {', '.join(unknown)}")
        files = str(Path(self.lake.curated(dataset)) / "*.parquet")
        with duckdb.connect() as con:
            selected = ", ".join(f'"{c}"' for c in columns)
            return con.execute(f"SELECT {selected} FROM read_parquet(?)", [files]).fetchdf()

    def step_summary(self, run_id: str, step: str) -> dict[str, Any]:
        return json.loads(Path(self.lake.run_summary(run_id, step)).read_text())

    def run_record(self, run_id: str) -> dict[str, Any]:
        return json.loads(Path(self.lake.uri("runs", run_id, "run.json")).read_text())

    def latest_run_id(self) -> str:
        """The newest run on this lake that succeeded."""
        from rental_kpis.pipeline import run_history

        runs = [r for r in run_history(self.lake, limit=1000) if r["status"] == "succeeded"]
        if not runs:
            raise LookupError(f"no succeeded run on {self.lake.root}: run the pipeline first")
        return runs[0]["run_id"]

    def run_facts(self, run_id: str) -> pd.DataFrame:
        record = self.run_record(run_id)
        summaries = {s: self.step_summary(run_id, s) for s in SPARK_STAGES}
        return run_facts(record, summaries)

    def run_timeline(self, run_id: str) -> pd.DataFrame:
        return stage_timeline(_stages_of(self.run_record(run_id)))

    def crawl(self) -> pd.DataFrame:
        from rental_kpis import catalog

        catalog.crawl(self.lake)
        return self.catalog()

    def catalog(self) -> pd.DataFrame:
        """One row per catalogued column: table, column, Glue type, partition key or not."""
        from rental_kpis import catalog

        return _catalog_frame(
            (t.name, t.location, t.columns, t.partition_keys) for t in catalog.get_tables(self.lake)
        )

    def processed(self, name: str) -> pd.DataFrame:
        """A KPI table read straight from the processed zone (before any crawl)."""
        import duckdb

        from rental_kpis.catalog import scan_sql
        from rental_kpis.kpis import PARTITIONS

        uri = self.lake.processed(_known_table(name))
        with duckdb.connect() as con:
            return con.execute(f"SELECT * FROM {scan_sql(uri, name in PARTITIONS)}").fetchdf()

    def query(self, name: str) -> pd.DataFrame:
        from rental_kpis import querying

        result = querying.run_named_query(self.lake, name)
        return pd.DataFrame(result.rows, columns=result.columns)

    def table(self, name: str) -> pd.DataFrame:
        """A whole KPI table, read through the catalog (as Athena would)."""
        from rental_kpis import catalog
        from rental_kpis.layout import DATABASE

        with catalog.connect(self.lake) as con:
            return con.execute(f'SELECT * FROM {DATABASE}."{_known_table(name)}"').fetchdf()


def _known_table(name: str) -> str:
    if name not in TABLES:
        raise KeyError(f"unknown table {name!r}; tables are {', '.join(TABLES)}")
    return name


def catalog_tables(columns: pd.DataFrame) -> pd.DataFrame:
    """One row per catalogued table (from ``catalog()``'s column rows): how many columns,
    its partition keys, where it lives."""
    keys = columns[columns["partition key"]].groupby("table")["column"].agg(", ".join)
    return (
        columns.groupby("table")
        .agg(columns=("column", "size"), location=("location", "first"))
        .join(keys.rename("partition keys"))
        .fillna({"partition keys": ""})
    )


def _catalog_frame(tables: Iterable[tuple[str, str, list, list]]) -> pd.DataFrame:
    rows = [
        {"table": name, "column": column, "type": kind, "partition key": partition,
         "location": location}
        for name, location, columns, keys in tables
        for (column, kind), partition in
        [(c, False) for c in columns] + [(k, True) for k in keys]
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["table", "column", "type", "partition key", "location"])


# ---------------------------------------------------------------- AWS


class AwsBackend:
    """The same operations on S3, EMR, Glue, Athena and Step Functions (``rental-kpis aws
    setup`` made the resources). Costs money while the EMR cluster runs."""

    name = "aws"

    def __init__(
        self, bucket: str, region: str, raw: str | Path, session: boto3.Session | None = None
    ) -> None:
        from rental_kpis.aws import deploy

        self.session = session or deploy.session_for(region)
        self.deployment: Deployment = deploy.deployment_for(bucket, region, self.session)
        self.lake = self.deployment.lake
        self.raw = Path(raw)

    def where(self) -> str:
        return f"s3://{self.deployment.bucket} in {self.deployment.region}"

    def layout(self) -> pd.DataFrame:
        return layout_table(self.lake)

    def connectivity(self) -> pd.DataFrame:
        """Who we are, and that each service the pipeline uses answers for this deployment."""
        d, s = self.deployment, self.session
        glue, athena = s.client("glue"), s.client("athena")
        sfn = s.client("stepfunctions")
        checks = [
            ("caller", s.client("sts").get_caller_identity()["Arn"]),
            ("bucket", _answers(lambda: s.client("s3").head_bucket(Bucket=d.bucket))),
            ("Glue database", _answers(lambda: glue.get_database(Name=d.database))),
            ("Glue crawler", _answers(lambda: glue.get_crawler(Name=d.crawler))),
            ("Athena workgroup", _answers(lambda: athena.get_work_group(WorkGroup=d.workgroup))),
            (
                "state machine",
                _answers(lambda: sfn.describe_state_machine(stateMachineArn=d.state_machine_arn)),
            ),
        ]
        return pd.DataFrame(checks, columns=["check", "result"]).set_index("check")

    def processed(self, name: str) -> pd.DataFrame:
        import awswrangler as wr

        uri = self.lake.processed(_known_table(name)) + "/"
        return wr.s3.read_parquet(uri, dataset=True, boto3_session=self.session)

    def rental_pairs(self) -> pd.DataFrame:
        """Pickup and dropoff location of every valid rental, from the curated zone on S3."""
        import awswrangler as wr

        uri = self.lake.curated("rental_transactions") + "/"
        columns = ["pickup_location", "dropoff_location"]
        return wr.s3.read_parquet(uri, columns=columns, boto3_session=self.session)

    def upload_raw(self) -> pd.DataFrame:
        """Upload raw CSV, step scripts and library zip; unchanged files are skipped."""
        from rental_kpis.aws import deploy

        uploaded = set(deploy.upload_inputs(self.deployment, self.session, self.raw))
        keys = self._keys("raw/") + self._keys("scripts/")
        return pd.DataFrame([{"key": k, "uploaded now": k in uploaded} for k in keys]).set_index(
            "key"
        )

    def verify_raw(self) -> pd.DataFrame:
        s3 = self.session.client("s3")
        files = []
        for key in self._keys("raw/"):
            parts = key.split("/", 2)  # raw/<dataset>/<file>; "raw/" itself is a folder marker
            if len(parts) == 3 and parts[1] in DATASETS and parts[2].endswith(".csv"):
                dataset, name = parts[1], parts[2]
                body = s3.get_object(Bucket=self.deployment.bucket, Key=key)["Body"].read()
                files.append((dataset, name, body))
        return raw_check(files)

    def _keys(self, prefix: str) -> list[str]:
        paginator = self.session.client("s3").get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.deployment.bucket, Prefix=prefix)
        keys = (o["Key"] for page in pages for o in page.get("Contents", []))
        return sorted(k for k in keys if not k.endswith("/"))  # not the folder markers

    def cluster_config(self) -> dict[str, Any]:
        from rental_kpis.aws import emr

        return emr.cluster_config(self.deployment)

    def run_steps(self, run_id: str, poll_seconds: float = 30.0) -> pd.DataFrame:
        """Start a cluster, add the three steps, wait, terminate; returns the steps' timeline."""
        from rental_kpis.aws import emr

        cluster = emr.create_cluster(self.deployment, session=self.session)
        try:
            ids = emr.add_steps(self.deployment, cluster, run_id, session=self.session)
            emr.wait_for_steps(
                self.deployment, cluster, ids, poll_seconds=poll_seconds, session=self.session
            )
        finally:
            emr.terminate_cluster(self.deployment, cluster, session=self.session)
        client = self.session.client("emr")
        stages = []
        for step, step_id in ids.items():
            status = client.describe_step(ClusterId=cluster, StepId=step_id)["Step"]["Status"]
            times = status.get("Timeline", {})
            started = times.get("StartDateTime") or times.get("CreationDateTime")
            stages.append(
                {"stage": step, "status": status["State"].lower(), "started": started,
                 "finished": times.get("EndDateTime")}
            )  # fmt: skip
        return stage_timeline(stages)

    def run_pipeline(self, run_id: str, poll_seconds: float = 10.0) -> pd.DataFrame:
        """Start the state machine, follow it to the end; returns the states' timeline."""
        from rental_kpis.aws import deploy

        arn = deploy.start_run(self.deployment, self.session, run_id)
        outcome = deploy.follow_run(arn, self.session, poll_seconds=poll_seconds)
        if outcome.status != "SUCCEEDED":
            raise RunFailed(run_id, outcome.status, outcome.error, outcome.cause)
        return execution_timeline(outcome.events)  # the history follow_run already read

    def run_timeline(self, run_id: str) -> pd.DataFrame:
        sfn = self.session.client("stepfunctions")
        pages = sfn.get_paginator("get_execution_history").paginate(
            executionArn=self.deployment.execution_arn(run_id)
        )
        return execution_timeline([e for page in pages for e in page["events"]])

    def step_summary(self, run_id: str, step: str) -> dict[str, Any]:
        key = self.lake.key(self.lake.run_summary(run_id, step))
        body = self.session.client("s3").get_object(Bucket=self.deployment.bucket, Key=key)
        return json.loads(body["Body"].read())

    def latest_run_id(self) -> str:
        sfn = self.session.client("stepfunctions")
        runs = sfn.list_executions(
            stateMachineArn=self.deployment.state_machine_arn, statusFilter="SUCCEEDED"
        )["executions"]
        if not runs:
            raise LookupError(f"no succeeded execution of {self.deployment.state_machine}")
        return max(runs, key=lambda r: r["startDate"])["name"]

    def run_facts(self, run_id: str) -> pd.DataFrame:
        sfn = self.session.client("stepfunctions")
        desc = sfn.describe_execution(executionArn=self.deployment.execution_arn(run_id))
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
        return run_facts(record, {s: self.step_summary(run_id, s) for s in SPARK_STAGES})

    def crawl(self, poll_seconds: float = 15.0, timeout_seconds: float = 900.0) -> pd.DataFrame:
        """Start the Glue crawler, wait until it is READY again, list what it catalogued."""
        glue = self.session.client("glue")
        glue.start_crawler(Name=self.deployment.crawler)
        started = time.monotonic()
        while glue.get_crawler(Name=self.deployment.crawler)["Crawler"]["State"] != "READY":
            if time.monotonic() - started > timeout_seconds:
                raise TimeoutError(f"crawler {self.deployment.crawler} still running")
            time.sleep(poll_seconds)
        return self.catalog()

    def catalog(self) -> pd.DataFrame:
        glue = self.session.client("glue")
        pages = glue.get_paginator("get_tables").paginate(DatabaseName=self.deployment.database)
        return _catalog_frame(
            (
                t["Name"],
                t.get("StorageDescriptor", {}).get("Location", ""),
                [(c["Name"], c["Type"]) for c in t.get("StorageDescriptor", {}).get("Columns", [])],
                [(c["Name"], c["Type"]) for c in t.get("PartitionKeys", [])],
            )
            for page in pages
            for t in page["TableList"]
        )

    def query(self, name: str) -> pd.DataFrame:
        from rental_kpis.aws import athena

        return athena.run_named_query(
            name, workgroup=self.deployment.workgroup, boto3_session=self.session
        )

    def table(self, name: str) -> pd.DataFrame:
        from rental_kpis.aws import athena

        return athena.run_sql(
            f'SELECT * FROM "{_known_table(name)}"',
            label=name,
            workgroup=self.deployment.workgroup,
            database=self.deployment.database,
            boto3_session=self.session,
        )


def _answers(call: Callable[[], object]) -> str:
    """ "ok", or the error AWS gave (access denied, not found) as one line."""
    try:
        call()
    except Exception as error:  # botocore ClientError and friends: show, do not stop
        return f"FAILED: {error}"
    return "ok"


Backend = LocalBackend | AwsBackend


def open_backend(
    backend: str,
    *,
    lake: str | Path = "lake",
    raw: str | Path = "data/raw",
    bucket: str = "",
    region: str = DEFAULT_REGION,
) -> Backend:
    """The notebooks' one switch: ``"local"`` (a lake folder) or ``"aws"`` (a bucket)."""
    if backend == "local":
        return LocalBackend(lake, raw, bucket, region)
    if backend == "aws":
        if not bucket:
            raise ValueError(
                'backend="aws" needs bucket="…" (the one `rental-kpis aws setup` made)'
            )
        return AwsBackend(bucket, region, raw)
    raise ValueError(f'backend must be "local" or "aws", not {backend!r}')
