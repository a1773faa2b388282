-- Revenue per calendar month (Trino's format_datetime, as on Athena).
SELECT
    format_datetime(CAST(rental_date AS timestamp), 'yyyy-MM') AS month,
    sum(total_revenue) AS total_revenue,
    sum(transaction_count) AS transaction_count
FROM "AwsDataCatalog"."rental_marketplace"."daily_metrics"
GROUP BY 1
ORDER BY 1
