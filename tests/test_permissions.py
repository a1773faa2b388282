"""Every AWS call the project causes is allowed by the policy of the principal that makes it.

The table is ``rental_kpis.aws.permissions`` (the Step Functions role's part derived from the
rendered state machine); the policies are the rendered ``iam_policies/``; the evaluator is
moto's, with conditions evaluated strictly (``tests/iam_evaluator.py``).
"""

from __future__ import annotations

import copy
import json

import boto3
import moto_tls
import pytest
from iam_evaluator import allowed, condition_matches
from moto import mock_aws
from parliament import analyze_policy_string
from test_aws_deploy import FAST_TEARDOWN
from test_backends import BUCKET, REGION, end_crawl, put_summaries, step_driver

from rental_kpis import queries
from rental_kpis.aws import deploy, emr, iam, permissions, statemachine, stepfunctions
from rental_kpis.aws.names import Deployment
from rental_kpis.cli import main
from rental_kpis.layout import DATASETS
from rental_kpis.spark.schemas import RAW_COLUMNS
from rental_kpis.walkthrough import AwsBackend

D = Deployment("rental-kpis-policy-test", "eu-west-1", "123456789012")
POLICIES = iam.policies_by_principal(D)
CALLS = permissions.all_calls(D)


def denied(policy: dict, calls: list[permissions.Call]) -> list[str]:
    return [str(c) for c in calls if not allowed(policy, c.action, c.resource, c.context)]


def it_has_rows_for_every_principal():
    assert {c.principal for c in CALLS} == set(permissions.PRINCIPALS) == set(POLICIES)


# The instance role's rows are mostly derived from a recorded run of the step scripts, so its
# two checks are in tests/test_cluster_run.py, where that run is.
TABLE_PRINCIPALS = [p for p in permissions.PRINCIPALS if p != permissions.EC2]


@pytest.mark.parametrize("principal", TABLE_PRINCIPALS)
def it_allows_every_call_of_the_table(principal):
    rows = [c for c in CALLS if c.principal == principal]
    assert rows
    assert denied(POLICIES[principal], rows) == []


@pytest.mark.parametrize("principal", TABLE_PRINCIPALS)
def it_denies_a_row_once_any_statement_is_removed(principal):
    """A missing permission fails the suite: each statement is needed by some row."""
    rows = [c for c in CALLS if c.principal == principal]
    policy = POLICIES[principal]
    for index, statement in enumerate(policy["Statement"]):
        cut = copy.deepcopy(policy)
        del cut["Statement"][index]
        assert denied(cut, rows), f"{principal}: nothing needs statement {statement['Sid']}"


def it_refuses_what_the_conditions_exclude():
    sfn, emr_role = POLICIES["stepfunctions_role"], POLICIES["emr_service_role"]
    ec2_role, service_role = D.role_arn(D.emr_ec2_role), D.role_arn(D.emr_service_role)
    cluster = "arn:aws:elasticmapreduce:eu-west-1:123456789012:cluster/j-OTHER"
    # iam:PassedToService: each role only to its service (any partition's suffix)
    assert allowed(sfn, "iam:PassRole", ec2_role, {"iam:PassedToService": "ec2.amazonaws.com"})
    assert allowed(sfn, "iam:PassRole", ec2_role, {"iam:PassedToService": "ec2.amazonaws.com.cn"})
    assert not allowed(
        sfn, "iam:PassRole", ec2_role, {"iam:PassedToService": "elasticmapreduce.amazonaws.com"}
    )
    assert not allowed(sfn, "iam:PassRole", service_role, {})
    # request tags: a cluster tagged otherwise (or with more keys) is not created by the role
    assert not allowed(sfn, "elasticmapreduce:AddTags", cluster, {})
    other = {"aws:RequestTag/project": "x", "aws:TagKeys": ("project",)}
    assert not allowed(sfn, "elasticmapreduce:AddTags", cluster, other)
    more = {"aws:RequestTag/project": "rental_kpis", "aws:TagKeys": ("project", "owner")}
    assert not allowed(sfn, "elasticmapreduce:AddTags", cluster, more)
    # resource tags: clusters of other projects, instances EMR did not make
    assert not allowed(sfn, "elasticmapreduce:TerminateJobFlows", cluster, {})
    assert not allowed(sfn, "elasticmapreduce:PutAutoTerminationPolicy", cluster, {})
    instance = "arn:aws:ec2:eu-west-1:123456789012:instance/i-0other"
    assert not allowed(emr_role, "ec2:TerminateInstances", instance, {})
    tagged = {"aws:ResourceTag/for-use-with-amazon-emr-managed-policies": "true"}
    assert allowed(emr_role, "ec2:TerminateInstances", instance, tagged)
    # account and region scoping is kept
    elsewhere = "arn:aws:ec2:us-west-2:123456789012:instance/i-0emr"
    assert not allowed(emr_role, "ec2:TerminateInstances", elsewhere, tagged)


def it_creates_clusters_with_the_tag_the_service_role_needs_to_stop_them():
    """EMR propagates a cluster's own tags to the instances, volumes, ENIs and launch templates
    it creates, and adds ``for-use-with-amazon-emr-managed-policies`` only to its security
    groups (EMR Management Guide, "Amazon EMR managed policies", "Tagging resources to use
    managed policies"). The service role's terminate and clean-up rights are scoped to that
    tag, so a cluster created without it could not be stopped by EMR."""
    sent = permissions.created_cluster_tags(statemachine.render(D))
    run = permissions.SAMPLE_RUN_ID
    assert sent == {t["Key"]: t["Value"] for t in emr.cluster_config(D, run_id=run)["Tags"]}
    assert sent["rental-kpis:run-id"] == run  # the execution's name, whose cluster it is
    assert sent["for-use-with-amazon-emr-managed-policies"] == "true"
    instance = "arn:aws:ec2:eu-west-1:123456789012:instance/i-0emr"
    emr_role = POLICIES["emr_service_role"]
    made = permissions.propagated(sent)
    assert allowed(emr_role, "ec2:TerminateInstances", instance, made)
    only_project = permissions.propagated({"project": "rental_kpis"})
    assert not allowed(emr_role, "ec2:TerminateInstances", instance, only_project)
    # the roles that create the cluster may give it exactly these tags
    cluster = "arn:aws:elasticmapreduce:eu-west-1:123456789012:cluster/j-NEW"
    tagging = permissions.tag_on_create(sent)
    for principal in ("stepfunctions_role", "student"):
        assert allowed(POLICIES[principal], "elasticmapreduce:AddTags", cluster, tagging)


def it_evaluates_conditions_strictly():
    assert not condition_matches({"StringEquals": {"k": "v"}}, {})
    assert condition_matches({"StringEqualsIfExists": {"k": "v"}}, {})
    assert condition_matches({"Null": {"k": "true"}}, {})
    assert not condition_matches({"Null": {"k": "true"}}, {"k": "v"})
    assert condition_matches({"ForAllValues:StringEquals": {"k": ["a", "b"]}}, {"k": ("a",)})
    assert not condition_matches({"StringLike": {"k": "ec2.amazonaws.com*"}}, {"k": "glue.x"})
    with pytest.raises(ValueError, match="not evaluated"):
        condition_matches({"DateGreaterThan": {"k": "2020-01-01"}}, {"k": "2021-01-01"})


def it_derives_the_step_functions_rows_from_the_definition():
    definition = statemachine.render(D)
    tasks = {n for n, s in statemachine.iter_states(definition) if s["Type"] == "Task"}
    causes = {c.cause for c in permissions.state_machine_calls(D, definition)}
    assert {n for n in tasks if any(c.startswith(f"state {n} ") or c == f"state {n}"
                                     for c in causes)} == tasks  # fmt: skip
    added = copy.deepcopy(definition)
    added["States"]["Extra"] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3:deleteBucket",
        "End": True,
    }
    with pytest.raises(permissions.NoPermissionRows, match="Task Extra"):
        permissions.state_machine_calls(D, added)


def it_keeps_the_operator_policy_clean_for_parliament():
    policy = POLICIES["student"]
    findings = analyze_policy_string(json.dumps(policy)).findings
    assert [(f.issue, f.detail) for f in findings] == []
    assert "${" not in json.dumps(policy)


def it_allows_doctor_every_vcpu_quota_it_reads():
    """The student's rows name the quotas ``doctor`` checks, kept in a list of their own
    (permissions is standard library only and cannot import doctor)."""
    from rental_kpis.aws import doctor

    assert tuple(q.code for q in doctor.VCPU_QUOTAS) == permissions.DOCTOR_VCPU_QUOTAS


@pytest.fixture
def session(fake_aws_credentials):
    with mock_aws(), moto_tls.patched():
        yield boto3.Session(region_name=REGION)


@pytest.fixture
def raw(tmp_path):
    folder = tmp_path / "raw"
    for dataset in DATASETS:
        (folder / dataset).mkdir(parents=True)
        header = ",".join(c.name for c in RAW_COLUMNS[dataset])
        (folder / dataset / f"{dataset}.csv").write_text(header + "\nx\n")
    return folder


def it_has_a_row_for_every_call_the_student_makes(session, raw, monkeypatch, glue_crawl_statuses):
    """Every boto3/awswrangler operation of setup, the notebooks' backend, doctor, run and
    teardown (recorded at botocore's before-call) appears in ``student_calls``."""
    from test_aws_athena import queue_athena_result

    called: set[str] = set()

    def record(model, **_):
        called.add(f"{model.service_model.service_name}.{model.name}")

    session.events.register("before-call", record)
    monkeypatch.setattr(boto3, "Session", lambda *a, **k: session)  # doctor, CLI, backend
    assert main(["aws", "doctor", "--bucket", BUCKET, "--region", REGION]) == 0
    deploy.setup(BUCKET, REGION, raw=raw, notify_email="s@example.com", session=session)
    backend = AwsBackend(BUCKET, REGION, raw, session=session)
    backend.upload_raw(), backend.verify_raw(), backend.connectivity()
    backend.run_steps("run-02", poll_seconds=0, sleep=step_driver(backend, {})[0])
    backend.crawl(poll_seconds=0, sleep=end_crawl(backend, "SUCCEEDED"))
    queue_athena_result(REGION, ["a"], [["1"]])
    backend.query("most_rented_vehicle_type")
    put_summaries(session, "run-02", "2026-01-02T10:05:00+00:00")
    backend.current_run_id(), backend.run_facts("run-02")
    for _ in queries.all_queries():  # notebook 03 completes run-02: crawl, queries, record
        queue_athena_result(REGION, ["a"], [["1"]])
    backend.pending_stages("run-02")
    backend.run_pipeline("run-02", poll_seconds=0, sleep=end_crawl(backend, "SUCCEEDED"))
    backend.run_timeline("run-02")
    arn = stepfunctions.start_run(backend.deployment, session, "run-04")
    stepfunctions.follow_run(arn, session, poll_seconds=0, timeout_seconds=0)
    put_summaries(session, "run-04", "2026-01-03T10:05:00+00:00")
    backend.run_facts("run-04")
    deploy.teardown(BUCKET, REGION, delete_data=True, session=session, waits=FAST_TEARDOWN)

    rows = {c.api for c in permissions.student_calls(backend.deployment)}
    assert called - rows - permissions.NO_PERMISSION_NEEDED == set()
    assert len(called) > 60
