"""``rental-kpis aws doctor``: a read-only preflight before anything is created or billed.

One check per line, each with the fix when it fails: credentials and account; the cluster
checked (the one setup deployed, or the default before the first setup, with the flags given
applied, as ``setup`` would deploy it); the region offers the EMR release and the instance
types; a default VPC with subnets exists (or the ``--subnet-id`` given does); EMR's managed
security groups there, if any, carry the tag the service role needs; each EC2 On-Demand vCPU
quota the cluster's instance families count against has room for its vCPUs beside those already
running in the region (else the exact value to request); the EMR clean-up
service-linked role; leftovers of an earlier setup; and what one run costs, approximately.
Nothing here writes: every call is a Describe/Get/List.
"""

from rental_kpis.aws.doctor._account import cleanup_role_check, credentials_check, leftovers_check
from rental_kpis.aws.doctor._check import FAIL, OK, WARN, Check
from rental_kpis.aws.doctor._cluster import (
    chosen_cluster,
    cluster_check,
    instance_type_check,
    release_check,
)
from rental_kpis.aws.doctor._cost import PRICES_DATED, PRICES_USD_PER_HOUR, cost_check
from rental_kpis.aws.doctor._network import network_check, security_groups_check
from rental_kpis.aws.doctor._preflight import run_checks
from rental_kpis.aws.doctor._quota import (
    VCPU_QUOTAS,
    VcpuQuota,
    family_of,
    quota_check,
    quota_of,
    quota_verdict,
)

__all__ = [
    "FAIL",
    "OK",
    "PRICES_DATED",
    "PRICES_USD_PER_HOUR",
    "VCPU_QUOTAS",
    "WARN",
    "Check",
    "VcpuQuota",
    "chosen_cluster",
    "cleanup_role_check",
    "cluster_check",
    "cost_check",
    "credentials_check",
    "family_of",
    "instance_type_check",
    "leftovers_check",
    "network_check",
    "quota_check",
    "quota_of",
    "quota_verdict",
    "release_check",
    "run_checks",
    "security_groups_check",
]
