"""The pure pandas helpers behind the walkthrough: each turns plain data (a run record, a
Step Functions history, an EMR request, raw bytes) into the frame a notebook cell shows.

A notebook says ``backend = open_backend("local", …)`` (or ``"aws"``) and then calls the same
methods either way: upload and verify the raw zone, run the Spark steps, crawl, query, run the
whole pipeline, read a run's facts. Every method returns a pandas frame or a plain dict that a
notebook cell shows as it is. Local: the lake folder, spark-submit, DuckDB. AWS: S3, EMR, Glue,
Athena and Step Functions through ``rental_kpis.aws``. Not used on EMR.
"""

from __future__ import annotations

import csv
import gzip
import html
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from rental_kpis.errors import UnknownName
from rental_kpis.layout import DATASETS, TABLES, ZONE_CONTENTS, ZONES, Lake
from rental_kpis.stages import SPARK_STAGES

if TYPE_CHECKING:
    from rental_kpis.aws.names import Deployment

PLACEHOLDER_REGION = "us-east-1"  # the local IAM/EMR views, before any AWS account


# ---------------------------------------------------------------- shared, pure


# Characters Markdown reads as markup inside a line: escapes, code, emphasis, links, tables.
_MARKDOWN_MARKUP = "\\`*_[]|~"


def markdown_text(value: object) -> str:
    """``value`` (a path, a name) as literal text in Markdown: HTML and Markdown markup escaped."""
    text = html.escape(str(value), quote=False)
    return "".join(f"\\{c}" if c in _MARKDOWN_MARKUP else c for c in text)


def layout_table(lake: Lake) -> pd.DataFrame:
    """Each zone of the lake, where it is, and what it holds (SPEC §2)."""
    rows = [{"zone": z, "location": lake.uri(z) + "/", "holds": ZONE_CONTENTS[z]} for z in ZONES]
    return pd.DataFrame(rows).set_index("zone")


def deployment_of(bucket: str, region: str) -> Deployment:
    """The names a deployment would get; the account id is a placeholder until AWS tells."""
    from rental_kpis.aws.names import Deployment

    return Deployment(bucket or "your-bucket", region or PLACEHOLDER_REGION)


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
    from rental_kpis.spark.readers import parse_header
    from rental_kpis.spark.schemas import missing_columns

    if name.endswith(".gz"):
        data = gzip.decompress(data)
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
    """Floats rounded for reading, rates (``*_rate``: fractions) to ``digits + 2`` places so
    that close ones still differ; money in the tables is never rounded (SPEC §4)."""
    floats = frame.select_dtypes("float").columns
    return frame.round({c: digits + 2 if c.endswith("_rate") else digits for c in floats})


def by_key(frame: pd.DataFrame) -> pd.DataFrame:
    """A KPI table sorted by its key, the first column (location_id, vehicle_type, user_id,
    rental_date): the order a reader looks rows up in."""
    if frame.empty:
        return frame
    return frame.sort_values(frame.columns[0], kind="stable").reset_index(drop=True)


def local_raw_uri(env: Any, dataset: str) -> str:
    """Where a notebook's own SparkSession reads ``dataset``: the raw zone; on AWS, ``env.raw``."""
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
    versions: dict[str, Any] = next(
        (s["versions"] for s in summaries.values() if s.get("versions")), {}
    )
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


def summary_record(run_id: str, summaries: dict[str, dict]) -> dict[str, Any]:
    """A run record (as ``run_facts`` takes it) from the step summaries alone: the facts of a
    run whose steps were submitted to EMR directly (notebook 02), which has no execution."""
    stages = {
        step: {
            "status": s.get("status", "succeeded"),
            "seconds": s.get("timings_seconds", {}).get("total", 0.0),
        }
        for step, s in summaries.items()
    }
    statuses = {f["status"] for f in stages.values()}
    return {
        "run_id": run_id,
        "status": statuses.pop() if len(statuses) == 1 else "failed",
        "started_at": min((s.get("started_at") or "" for s in summaries.values()), default=""),
        "finished_at": max((s.get("finished_at") or "" for s in summaries.values()), default=""),
        "stages": stages,
    }


def stages_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"stage": name, "status": f["status"], "started": f["started_at"],
         "finished": f.get("finished_at")}
        for name, f in record.get("stages", {}).items() if f.get("started_at")
    ]  # fmt: skip


def known_table(name: str) -> str:
    if name not in TABLES:
        raise UnknownName(f"unknown table {name!r}; tables are {', '.join(TABLES)}")
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


def catalog_frame(tables: Iterable[tuple[str, str, list, list]]) -> pd.DataFrame:
    rows = [
        {"table": name, "column": column, "type": kind, "partition key": partition,
         "location": location}
        for name, location, columns, keys in tables
        for (column, kind), partition in
        [(c, False) for c in columns] + [(k, True) for k in keys]
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["table", "column", "type", "partition key", "location"])
