"""The state machine: statelint, the no-leaked-cluster graph property, and executions of the real
rendered definition in moto's Step Functions interpreter with MockConfigFile mocks."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from moto import mock_aws
from sfn_mocking import load_test_case, mocked_test_case
from statelint.linter import Linter

from rental_kpis.aws import statemachine as sm
from rental_kpis.aws.emr import ClusterSpec, RoleWait, cluster_config, create_cluster, step_args
from rental_kpis.aws.names import Deployment
from rental_kpis.errors import RunFailed
from rental_kpis.queries import names as query_names
from rental_kpis.stages import SPARK_STAGES, STAGES, stage
from rental_kpis.walkthrough import AwsBackend

REGION = "eu-west-1"
FAST = sm.Timing(retry_interval_seconds=1, crawler_poll_seconds=0, max_crawler_polls=3)


@pytest.fixture
def deployment() -> Deployment:
    return Deployment("rental-kpis-test", REGION, "123456789012")


def it_renders_to_a_definition_statelint_accepts_with_no_placeholder_left(deployment):
    definition = sm.render(deployment)
    assert Linter.validate(definition) == []
    assert "${" not in json.dumps(definition)


def it_refuses_an_unknown_placeholder(tmp_path, deployment):
    template = tmp_path / "t.asl.json"
    template.write_text(
        json.dumps(
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": "${Nope}", "End": True}}}
        )
    )
    with pytest.raises(KeyError, match=r"no value for placeholder \$\{Nope\}"):
        sm.render(deployment, template=template)


def it_passes_a_terminate_task_on_every_path_once_the_cluster_exists(deployment):
    definition = sm.render(deployment)
    create = definition["States"]["CreateCluster"]
    assert create["Next"] == "SetIdleTimeout"
    # From the first state that runs on the cluster, no path to an end skips a terminate.
    assert sm.paths_avoiding_terminate(definition, "SetIdleTimeout") == []
    # From CreateCluster, the only such path is its own Catch: creation failed, no cluster runs.
    assert sm.paths_avoiding_terminate(definition, "CreateCluster") == [
        ["CreateCluster", "NotifyFailure", "PipelineFailed"]
    ]


def it_gives_every_task_a_retry_and_a_catch(deployment):
    tasks = [(n, s) for n, s in sm.iter_states(sm.render(deployment)) if s["Type"] == "Task"]
    assert len(tasks) == 13
    for name, state in tasks:
        assert state.get("Retry"), name
        assert state.get("Catch"), name
        for retrier in state["Retry"]:
            assert retrier["BackoffRate"] >= 2 and retrier["MaxAttempts"] >= 1, name


def it_bounds_every_emr_task_with_a_caught_timeout(deployment):
    """A state-machine-level timeout would skip the Catch: each EMR Task carries its own, and
    every one that runs once the cluster exists is caught on the way to a terminate task."""
    definition = sm.render(deployment)
    states = dict(sm.iter_states(definition))
    emr_tasks = [
        n
        for n, s in states.items()
        if any(k in s.get("Resource", "") for k in ("elasticmapreduce", "aws-sdk:emr:"))
    ]
    assert len(emr_tasks) == 7
    for name in emr_tasks:
        assert states[name]["TimeoutSeconds"] > 0, name
        caught = {e for c in states[name]["Catch"] for e in c["ErrorEquals"]}
        assert caught & {"States.ALL", "States.Timeout"}, name
    timing = sm.Timing()
    assert states["ValidateRaw"]["TimeoutSeconds"] == (
        timing.cluster_start_timeout_seconds + timing.step_timeout_seconds
    )


def it_creates_the_cluster_without_sync_and_retries_no_generic_failure(deployment):
    """createCluster returns the id at once: a retried RunJobFlow request that failed created
    no cluster, and nothing after it can fail without the id to terminate."""
    create = sm.render(deployment)["States"]["CreateCluster"]
    assert create["Resource"] == "arn:aws:states:::elasticmapreduce:createCluster"
    retried = {e for r in create["Retry"] for e in r["ErrorEquals"]}
    assert retried == {"EMR.AmazonElasticMapReduceException"}
    # ... for about as long as notebook 02 waits for a new instance profile (emr.RoleWait).
    [retry] = create["Retry"]
    waited = sum(
        retry["IntervalSeconds"] * retry["BackoffRate"] ** n for n in range(retry["MaxAttempts"])
    )
    assert waited == 70 and abs(waited - sum(RoleWait().delays)) <= 10


def it_names_its_states_after_the_stage_spine(deployment):
    names = {n for n, _ in sm.iter_states(sm.render(deployment))}
    assert {s.state for s in STAGES} <= names


def it_creates_the_cluster_the_config_builder_describes(deployment):
    """CreateCluster sends the request less its idle policy, which SetIdleTimeout gives the
    cluster through PutAutoTerminationPolicy; read back, the two are the builder's request."""
    spec = ClusterSpec(core_instance_count=3, idle_timeout_seconds=900)
    definition = sm.render(deployment, spec)
    params = definition["States"]["CreateCluster"]["Parameters"]
    wanted = cluster_config(deployment, spec)
    assert "AutoTerminationPolicy" not in params
    assert params == sm.create_cluster_parameters(wanted)
    assert params["StepConcurrencyLevel"] >= 2
    assert params["ReleaseLabel"].startswith("emr-7.")
    idle = definition["States"]["SetIdleTimeout"]
    assert idle["Resource"] == "arn:aws:states:::aws-sdk:emr:putAutoTerminationPolicy"
    assert idle["Parameters"] == {
        "ClusterId.$": "$.cluster.ClusterId",
        "AutoTerminationPolicy": {"IdleTimeout": 900},
    }
    assert sm.cluster_request(definition) == wanted
    assert ClusterSpec.from_request(sm.cluster_request(definition)) == spec


def it_submits_each_step_with_the_builders_arguments(deployment):
    definition = sm.render(deployment)
    states = dict(sm.iter_states(definition))
    for step in SPARK_STAGES:
        state = states[stage(step).state]
        intrinsic = state["Parameters"]["Step"]["HadoopJarStep"]["Args.$"]
        expected = [f"'{a}'" for a in step_args(deployment, step, "RUN")]
        expected[-1] = "$$.Execution.Name"
        assert intrinsic == f"States.Array({', '.join(expected)})"
    assert [q["name"] for q in states["ListQueries"]["Result"]] == query_names()


# --- executions in moto's interpreter --------------------------------------------------------


@pytest.fixture
def sfn_world(fake_aws_credentials):
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        session = boto3.Session(region_name=REGION)
        account = session.client("sts").get_caller_identity()["Account"]
        deployment = Deployment("rental-kpis-test", REGION, account)
        sns, sqs = session.client("sns"), session.client("sqs")
        topic = sns.create_topic(Name=deployment.topic)["TopicArn"]
        queue = sqs.create_queue(QueueName="notices")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
        sfn = session.client("stepfunctions")
        arn = sfn.create_state_machine(
            name=deployment.state_machine,
            definition=json.dumps(sm.render(deployment, timing=FAST)),
            roleArn=deployment.role_arn(deployment.stepfunctions_role),
        )["stateMachineArn"]

        def run(case: str) -> dict:
            with mocked_test_case(load_test_case("rental_pipeline", case)):
                execution = sfn.start_execution(stateMachineArn=arn, name=f"run-{case}")
                deadline = time.monotonic() + 60
                while (desc := sfn.describe_execution(executionArn=execution["executionArn"]))[
                    "status"
                ] == "RUNNING":
                    assert time.monotonic() < deadline, f"{case} still running"
                    time.sleep(0.1)
            events = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            return {
                "status": desc["status"],
                "error": desc.get("error"),
                "cause": desc.get("cause"),
                "entered": [
                    e["stateEnteredEventDetails"]["name"]
                    for e in events
                    if "stateEnteredEventDetails" in e
                ],
                "failed_tasks": sum(e["type"] == "TaskFailed" for e in events),
                "notices": [json.loads(m["Body"]) for m in messages],
            }

        yield run


def it_runs_the_happy_path_and_publishes_the_success_notice(sfn_world):
    result = sfn_world("HappyPath")
    assert result["status"] == "SUCCEEDED"
    assert result["entered"].count("RunQuery") == len(query_names())
    assert "TerminateClusterOnFailure" not in result["entered"]
    assert result["entered"].index("TerminateCluster") < result["entered"].index("StartCrawler")
    [notice] = result["notices"]
    assert notice["Subject"] == "rental_kpis: pipeline run succeeded"
    assert "Run run-HappyPath succeeded" in notice["Message"]
    assert "j-MOCKED0CLUSTER" in notice["Message"]
    assert f"{len(query_names())} named queries answered" in notice["Message"]


def it_retries_a_throttled_cluster_creation(sfn_world):
    result = sfn_world("ThrottledThenFine")
    assert result["status"] == "SUCCEEDED"
    assert result["failed_tasks"] == 1


def it_retries_the_cluster_while_emr_refuses_a_new_instance_profile(sfn_world):
    """The optimised integration reports RunJobFlow's ValidationException "Invalid
    InstanceProfile" (IAM not propagated yet) as EMR.AmazonElasticMapReduceException, the one
    error CreateCluster retries: 3 retries, 10 + 20 + 40 s apart on AWS."""
    result = sfn_world("InstanceProfileNotReadyYet")
    assert result["status"] == "SUCCEEDED"
    assert result["failed_tasks"] == 2
    assert result["entered"].count("CreateCluster") == 1


def it_terminates_the_cluster_and_reports_the_cause_when_a_step_fails_after_its_retry(sfn_world):
    result = sfn_world("KpiStepFails")
    assert result["status"] == "FAILED"
    assert result["error"] == "States.TaskFailed"
    assert "user_transaction_metrics" in result["cause"]
    assert result["failed_tasks"] == 2  # the first attempt and its one retry
    entered = result["entered"]
    assert entered.index("TerminateClusterOnFailure") < entered.index("NotifyFailure")
    assert "StartCrawler" not in entered
    [notice] = result["notices"]
    assert notice["Subject"] == "rental_kpis: pipeline run FAILED"
    assert "States.TaskFailed" in notice["Message"]
    assert "stderr.gz" in notice["Message"]


def it_fails_with_the_crawlers_own_error_when_the_crawl_fails(sfn_world):
    result = sfn_world("CrawlerFails")
    assert (result["status"], result["error"]) == ("FAILED", "CrawlerFailed")
    assert "not authorized to perform: s3:GetObject" in result["cause"]
    assert "RunQueries" not in result["entered"]
    [notice] = result["notices"]
    assert "CrawlerFailed" in notice["Message"]


def it_gives_up_polling_the_crawler_after_the_budget(sfn_world):
    result = sfn_world("CrawlerNeverFinishes")
    assert (result["status"], result["error"]) == ("FAILED", "CrawlerTimedOut")
    assert result["entered"].count("GetCrawler") == FAST.max_crawler_polls
    assert "after 3 polls" in result["cause"]


def it_does_not_take_an_earlier_crawl_for_this_runs_crawl(sfn_world):
    result = sfn_world("OnlyAnEarlierCrawlSucceeded")
    assert (result["status"], result["error"]) == ("FAILED", "CrawlerTimedOut")
    assert "RunQueries" not in result["entered"]


def it_does_not_take_an_earlier_crawl_whose_start_time_is_later_than_the_run(sfn_world):
    """The crawl is recognised by its LastCrawl changing, not by a clock: an earlier crawl
    stamped after the run started (another clock) is still not this run's."""
    result = sfn_world("EarlierCrawlStampedInTheFuture")
    assert (result["status"], result["error"]) == ("FAILED", "CrawlerTimedOut")
    assert "RunQueries" not in result["entered"]


def it_reads_the_crawl_whatever_the_json_form_of_its_start_time(sfn_world):
    """No AWS page gives the JSON form of a timestamp in an aws-sdk integration's output; the
    check compares LastCrawl whole as a string, so a start time not in RFC 3339 form works."""
    result = sfn_world("CrawlTimesNotRfc3339")
    assert result["status"] == "SUCCEEDED", result
    assert result["entered"].count("GetCrawler") == 1


def it_takes_the_first_crawl_ever_of_a_new_crawler(sfn_world):
    result = sfn_world("FirstEverCrawl")
    assert result["status"] == "SUCCEEDED", result
    entered = result["entered"]
    assert entered.index("NoCrawlBefore") < entered.index("StartCrawler")
    assert "KeepLastCrawl" not in entered


def it_reports_a_failed_first_crawl_ever(sfn_world):
    result = sfn_world("CrawlerFailsOnFirstEverCrawl")
    assert (result["status"], result["error"]) == ("FAILED", "CrawlerFailed")
    assert "not authorized to perform: s3:GetObject" in result["cause"]


def it_compares_no_timestamp_in_the_crawl_check(deployment):
    """A timestamp comparison ("Choice workflow state") needs an RFC 3339 string and fails the
    run uncatchably (States.Runtime) on anything else; the crawl check compares strings only."""
    text = json.dumps(sm.render(deployment))
    assert "Timestamp" not in text
    states = dict(sm.iter_states(sm.render(deployment)))
    assert states["ReadCrawlerBefore"]["Resource"] == states["GetCrawler"]["Resource"]
    assert states["ReadCrawlerBefore"]["Next"] == "HadACrawlBefore"


def it_fails_naming_the_query_when_athena_fails(sfn_world):
    result = sfn_world("QueryFails")
    assert (result["status"], result["error"]) == ("FAILED", "QueryFailed")
    assert "TABLE_NOT_FOUND" in result["cause"]
    assert any(f"named query {name} failed" in result["cause"] for name in query_names())
    [notice] = result["notices"]
    assert "QueryFailed" in notice["Message"]


def it_notifies_when_the_cluster_never_starts(sfn_world):
    result = sfn_world("ClusterNeverStarts")
    assert result["status"] == "FAILED"
    assert result["entered"] == ["CreateCluster", "NotifyFailure", "PipelineFailed"]
    assert "TERMINATED_WITH_ERRORS" in result["cause"]


def it_terminates_the_cluster_when_its_idle_policy_cannot_be_set(sfn_world):
    """SetIdleTimeout runs once the cluster exists: when PutAutoTerminationPolicy keeps failing
    (errors of the SDK integration are named Emr.<ErrorName>), the run terminates the cluster
    before the notice, and retried the call three times first."""
    result = sfn_world("IdleTimeoutRefused")
    assert (result["status"], result["error"]) == ("FAILED", "Emr.InvalidRequestException")
    assert result["entered"] == [
        "CreateCluster",
        "SetIdleTimeout",
        "TerminateClusterOnFailure",
        "NotifyFailure",
        "PipelineFailed",
    ]
    assert result["failed_tasks"] == 4
    [notice] = result["notices"]
    assert "Auto-termination policy is not supported" in notice["Message"]


def it_terminates_the_cluster_when_a_step_times_out(sfn_world):
    """(moto's interpreter retries States.Timeout under a States.TaskFailed retrier, which AWS
    does not; the mock answers the timeout on both attempts, the path is the same.)"""
    result = sfn_world("ValidateRawTimesOut")
    assert (result["status"], result["error"]) == ("FAILED", "States.Timeout")
    assert result["entered"] == [
        "CreateCluster",
        "SetIdleTimeout",
        "ValidateRaw",
        "TerminateClusterOnFailure",
        "NotifyFailure",
        "PipelineFailed",
    ]


def it_terminates_a_cluster_that_failed_to_start(sfn_world):
    """The cluster's id is known from CreateCluster on: a cluster that never came up cancels
    the first step, and the run still passes the terminate task."""
    result = sfn_world("ClusterFailsToStart")
    assert result["status"] == "FAILED"
    assert "CANCELLED" in result["cause"]
    entered = result["entered"]
    assert entered.index("TerminateClusterOnFailure") < entered.index("NotifyFailure")


def it_runs_the_pipeline_through_the_notebooks_aws_backend(sfn_world):
    """What notebooks 03 and 05 call on AWS: run, timeline, newest run, run facts."""
    session = boto3.Session(region_name=REGION)
    bucket = "rental-kpis-test"
    s3 = session.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    for step in SPARK_STAGES:
        summary = {"step": step, "versions": {"spark": "3.5.6"}}
        s3.put_object(Bucket=bucket, Key=f"runs/run-nb/{step}.json", Body=json.dumps(summary))
    backend = AwsBackend(bucket, REGION, "data/raw", session=session)
    # A cluster EMR made for this run whose id the run never learnt (CreateCluster's first
    # attempt failed after EMR accepted it, the retry made j-MOCKED0CLUSTER), and another run's.
    d = backend.deployment
    lost = create_cluster(d, ClusterSpec(), session=session, run_id="run-nb")
    other = create_cluster(d, ClusterSpec(), session=session, run_id="run-other")
    with mocked_test_case(load_test_case("rental_pipeline", "HappyPath")):
        timeline = backend.run_pipeline("run-nb", poll_seconds=0.05)
    state = {
        c["Id"]: c["Status"]["State"] for c in session.client("emr").list_clusters()["Clusters"]
    }
    assert state[lost].startswith("TERMINAT") and not state[other].startswith("TERMINAT")
    assert timeline["stage"].iloc[0] == "CreateCluster"
    assert timeline["stage"].iloc[-1] == "Succeeded"
    assert set(timeline["status"]) == {"succeeded"}
    assert (timeline["end_s"] >= timeline["start_s"]).all()
    assert backend.current_run_id() == "run-nb"
    facts = backend.run_facts("run-nb")["value"]
    assert (facts["run id"], facts["status"], facts["spark version"]) == (
        "run-nb",
        "succeeded",
        "3.5.6",
    )
    assert facts["stage NotifySuccess"].endswith("(succeeded)")


def it_raises_the_runs_error_and_cause_when_the_execution_fails(sfn_world):
    session = boto3.Session(region_name=REGION)
    session.client("s3").create_bucket(
        Bucket="rental-kpis-test", CreateBucketConfiguration={"LocationConstraint": REGION}
    )  # the deployment's bucket, where notebook 02 would have left the run's step summaries
    backend = AwsBackend("rental-kpis-test", REGION, "data/raw", session=session)
    with (
        mocked_test_case(load_test_case("rental_pipeline", "CrawlerFails")),
        pytest.raises(RunFailed, match=r"run run-bad FAILED: CrawlerFailed: .*s3:GetObject"),
    ):
        backend.run_pipeline("run-bad", poll_seconds=0.05)
