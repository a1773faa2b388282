"""EMR step: curated/ -> processed/ location_performance, vehicle_type_performance.

spark-submit --py-files rental_kpis.zip vehicle_location_metrics.py \
    --lake-root s3://BUCKET [--run-id ID]
"""

import sys

from rental_kpis.spark.steps import main

if __name__ == "__main__":
    sys.exit(main("vehicle_location_metrics"))
