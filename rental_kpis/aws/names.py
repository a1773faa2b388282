"""Every AWS resource name and ``${…}`` placeholder of a deployment, derived from the bucket.

One student account may host several deployments (one per bucket), so every name carries a
short suffix made from the bucket; nothing else is configured by hand. Stdlib only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rental_kpis.layout import DATABASE, TABLES

PROJECT = "rental-kpis"
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

    def s3(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", *parts])

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
        return [self.s3("processed", table) + "/" for table in TABLES]
