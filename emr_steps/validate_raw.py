"""EMR step: validate the raw zone (SPEC §3) into curated/ and rejected/.

spark-submit --py-files rental_kpis.zip validate_raw.py --lake-root s3://BUCKET [--run-id ID]
"""

import sys

from rental_kpis.spark.steps import main

if __name__ == "__main__":
    sys.exit(main("validate_raw"))
