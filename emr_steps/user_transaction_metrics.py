"""EMR step: curated/ -> processed/ user_metrics, daily_metrics (SPEC §4).

spark-submit --py-files rental_kpis.zip user_transaction_metrics.py \
    --lake-root s3://BUCKET [--run-id ID]
"""

import sys

from rental_kpis.spark.steps import main

if __name__ == "__main__":
    sys.exit(main("user_transaction_metrics"))
