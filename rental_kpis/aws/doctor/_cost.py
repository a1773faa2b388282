"""What one run costs, approximately, from a dated price table."""

from __future__ import annotations

from rental_kpis.aws.doctor._check import OK, WARN, Check
from rental_kpis.aws.emr import ClusterSpec

# On-demand USD per instance-hour in us-east-1: (EC2, EMR uplift). Approximate, as published
# on the Amazon EC2 and Amazon EMR pricing pages when this table was dated; other regions
# differ (often 5–25 % more). Per-second billing, one-minute minimum.
PRICES_DATED = "2026-11"


PRICES_USD_PER_HOUR: dict[str, tuple[float, float]] = {
    "m5.xlarge": (0.192, 0.048),
    "m5.2xlarge": (0.384, 0.096),
    "m5.4xlarge": (0.768, 0.192),
    "m6i.xlarge": (0.192, 0.048),
    "m6i.2xlarge": (0.384, 0.096),
    "r5.xlarge": (0.252, 0.063),
    "r5.2xlarge": (0.504, 0.126),
}


# A run on the sample: ~10 min provisioning and bootstrap, ~15 min of steps, termination.
RUN_HOURS = 0.5


# Glue crawler: USD 0.44 per DPU-hour, 10-minute minimum per crawl (AWS Glue pricing page).
CRAWL_USD = 0.44 * 2 * (10 / 60)


def cost_check(spec: ClusterSpec) -> Check:
    """Instance-hours × (EC2 on-demand + EMR) from the dated table, plus one crawl."""
    instances = spec.instance_types
    missing = sorted({t for t in instances if t not in PRICES_USD_PER_HOUR})
    if missing:
        return Check(
            "cost of one run",
            WARN,
            f"no price for {', '.join(missing)} in the table (dated {PRICES_DATED})",
            "see the Amazon EMR pricing page",
        )
    per_hour = sum(sum(PRICES_USD_PER_HOUR[t]) for t in instances)
    total = per_hour * RUN_HOURS + CRAWL_USD
    return Check(
        "cost of one run",
        OK,
        f"≈ USD {total:.2f} (approximate: {spec.shape()} for ~{RUN_HOURS * 60:.0f} min at "
        f"USD {per_hour:.3f}/h EC2+EMR, us-east-1 prices of {PRICES_DATED}, + one crawl); an "
        f"idle cluster stops after {spec.idle_timeout_seconds // 60} min",
    )
