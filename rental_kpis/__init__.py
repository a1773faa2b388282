"""rental_kpis: validation and KPI pipeline for a car-rental marketplace.

The package root imports nothing heavy, so that `emr_steps/*.py` can import the Spark-only
modules on a cluster that lacks pandas, duckdb or boto3.
"""

__version__ = "0.1.0"
