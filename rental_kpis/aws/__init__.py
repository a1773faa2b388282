"""The AWS backend: one module per service behind this package (boto3, awswrangler).

Nothing here is imported by the EMR step modules. Every client honours the standard
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` variables (botocore reads them), so the
same code runs against moto in tests.
"""

from rental_kpis.aws.athena import run_named_query

__all__ = ["run_named_query"]
