"""Every AWS resource name and ``${…}`` placeholder of a deployment, derived from the bucket,
and ``substitute``, which fills the placeholders of ``iam_policies/`` and ``stepfunctions/``.

One student account may host several deployments (one per bucket), so every name carries a
short suffix made from the bucket; nothing else is configured by hand. Stdlib only.

Placeholders are ``${Name}``. A string that is exactly one placeholder takes the value's own
JSON type (numbers stay numbers, lists stay lists), so a template stays valid JSON;
placeholders inside longer strings are replaced as text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rental_kpis.layout import DATABASE, TABLES, Lake

PROJECT = "rental-kpis"
# The tag every resource of the project carries; the roles' EMR rights are scoped to it.
PROJECT_TAG = ("project", "rental_kpis")
# The tag EMR's tag-scoped service-role permissions rely on (``AmazonEMRServicePolicy_v2``, and
# ``iam_policies/emr_service_role.json`` after it). EMR propagates a cluster's tags to the
# instances, EBS volumes, ENIs and launch templates it creates, but puts this one only on the
# security groups it creates by itself: the cluster must be created with it, or the service
# role may not terminate the cluster's instances (EMR Management Guide, "Amazon EMR managed
# policies", section "Tagging resources to use managed policies").
EMR_MANAGED_TAG = ("for-use-with-amazon-emr-managed-policies", "true")
# Every cluster of the project is created with these tags (notebooks and state machine alike).
CLUSTER_TAGS = (PROJECT_TAG, EMR_MANAGED_TAG)
# ... and with this one, valued with the run id that starts it: a cluster whose id a run lost
# (CreateCluster failed or timed out after EMR accepted the request) is found by it.
RUN_ID_TAG = "rental-kpis:run-id"
EMR_RELEASE_LABEL = "emr-7.13.0"  # Spark 3.5.6, the version the local backend pins


@dataclass(frozen=True)
class Deployment:
    """The names of one deployment (bucket + region), as the policies and the state machine
    see them."""

    bucket: str
    region: str
    account_id: str = "000000000000"
    partition: str = "aws"

    @property
    def suffix(self) -> str:
        return hashlib.sha1(self.bucket.encode()).hexdigest()[:8]

    def _name(self, role: str) -> str:
        return f"{PROJECT}-{role}-{self.suffix}"

    @property
    def emr_service_role(self) -> str:
        return self._name("emr-service")

    @property
    def emr_ec2_role(self) -> str:
        """The EC2 role and its instance profile share this name."""
        return self._name("emr-ec2")

    @property
    def glue_crawler_role(self) -> str:
        return self._name("glue-crawler")

    @property
    def stepfunctions_role(self) -> str:
        return self._name("sfn")

    @property
    def crawler(self) -> str:
        return self._name("processed")

    @property
    def workgroup(self) -> str:
        return self._name("athena")

    @property
    def topic(self) -> str:
        return self._name("notices")

    @property
    def state_machine(self) -> str:
        return self._name("pipeline")

    @property
    def cluster_name(self) -> str:
        """Every cluster of this deployment has this name (and the project tag)."""
        return f"{self.state_machine}-cluster"

    @property
    def database(self) -> str:
        return DATABASE

    def role_arn(self, role: str) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:role/{role}"

    @property
    def topic_arn(self) -> str:
        return f"arn:{self.partition}:sns:{self.region}:{self.account_id}:{self.topic}"

    @property
    def state_machine_arn(self) -> str:
        return (
            f"arn:{self.partition}:states:{self.region}:{self.account_id}:"
            f"stateMachine:{self.state_machine}"
        )

    def execution_arn(self, run_id: str) -> str:
        """The state machine's execution named ``run_id`` (``rental-kpis aws run`` names it so)."""
        return (
            f"arn:{self.partition}:states:{self.region}:{self.account_id}:"
            f"execution:{self.state_machine}:{run_id}"
        )

    @property
    def lake(self) -> Lake:
        """The bucket as a lake: the zones' URIs come from the one layout rule (SPEC §2)."""
        return Lake(f"s3://{self.bucket}")

    def placeholders(self) -> dict[str, str]:
        """The values of every ``${Name}`` used in ``iam_policies/`` and ``stepfunctions/``."""
        return {
            "Partition": self.partition,
            "Region": self.region,
            "AccountId": self.account_id,
            "Bucket": self.bucket,
            "GlueDatabase": self.database,
            "CrawlerName": self.crawler,
            "AthenaWorkgroup": self.workgroup,
            "TopicArn": self.topic_arn,
            "EmrServiceRoleName": self.emr_service_role,
            "EmrEc2RoleName": self.emr_ec2_role,
            "EmrServiceRoleArn": self.role_arn(self.emr_service_role),
            "EmrEc2RoleArn": self.role_arn(self.emr_ec2_role),
            "StateMachineName": self.state_machine,
            "Suffix": self.suffix,
            "GlueCrawlerRoleName": self.glue_crawler_role,
            "StepFunctionsRoleName": self.stepfunctions_role,
        }

    @property
    def roles(self) -> dict[str, str]:
        """Policy file stem in ``iam_policies/`` -> role name."""
        return {
            "emr_service_role": self.emr_service_role,
            "emr_ec2_instance_role": self.emr_ec2_role,
            "glue_crawler_role": self.glue_crawler_role,
            "stepfunctions_role": self.stepfunctions_role,
        }

    @property
    def processed_prefixes(self) -> list[str]:
        return [self.lake.processed(table) + "/" for table in TABLES]


PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def substitute(node: Any, mapping: Mapping[str, Any]) -> Any:
    """Fill every ``${Name}`` in a JSON tree; an unknown name is an error, never left behind."""
    if isinstance(node, dict):
        return {key: substitute(value, mapping) for key, value in node.items()}
    if isinstance(node, list):
        return [substitute(value, mapping) for value in node]
    if not isinstance(node, str):
        return node
    whole = PLACEHOLDER.fullmatch(node)
    if whole:
        return _lookup(mapping, whole.group(1))
    return PLACEHOLDER.sub(lambda m: str(_lookup(mapping, m.group(1))), node)


def _lookup(mapping: Mapping[str, Any], name: str) -> Any:
    if name not in mapping:
        raise KeyError(f"no value for placeholder ${{{name}}}; known: {', '.join(sorted(mapping))}")
    return mapping[name]
