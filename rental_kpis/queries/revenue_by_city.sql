-- Revenue and rentals per city, highest revenue first.
SELECT
    city,
    state,
    sum(total_revenue) AS total_revenue,
    sum(transaction_count) AS transaction_count,
    count(*) AS locations
FROM rental_marketplace.location_performance
GROUP BY city, state
ORDER BY total_revenue DESC, city
