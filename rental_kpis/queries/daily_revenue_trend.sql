-- Revenue per day with its 7-day rolling mean.
SELECT
    rental_date,
    total_revenue,
    transaction_count,
    avg(total_revenue) OVER (
        ORDER BY rental_date ROWS BETWEEN 6 PRECEDING AND CURRENT ROW
    ) AS revenue_7day_mean
FROM rental_marketplace.daily_metrics
ORDER BY rental_date
