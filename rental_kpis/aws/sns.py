"""The SNS topic the state machine notifies, and the student's e-mail subscription."""

from __future__ import annotations

import boto3

from rental_kpis.aws.names import Deployment


def _topics(sns) -> set[str]:
    return {
        t["TopicArn"]
        for page in sns.get_paginator("list_topics").paginate()
        for t in page["Topics"]
    }


def ensure_topic(deployment: Deployment, session: boto3.Session, email: str | None) -> list[str]:
    sns = session.client("sns")
    existing = _topics(sns)
    changed = []
    if deployment.topic_arn not in existing:
        sns.create_topic(Name=deployment.topic, Tags=[{"Key": "project", "Value": "rental_kpis"}])
        changed.append(f"topic {deployment.topic}")
    if email:
        subs = sns.list_subscriptions_by_topic(TopicArn=deployment.topic_arn)["Subscriptions"]
        if email not in {s["Endpoint"] for s in subs}:
            sns.subscribe(TopicArn=deployment.topic_arn, Protocol="email", Endpoint=email)
            changed.append(f"email subscription {email} (confirm the e-mail AWS sends)")
    return changed


def delete_topic(deployment: Deployment, session: boto3.Session) -> list[str]:
    sns = session.client("sns")
    if deployment.topic_arn not in _topics(sns):
        return []
    sns.delete_topic(TopicArn=deployment.topic_arn)
    return [f"topic {deployment.topic}"]
