-- The pickup location with the highest total revenue.
SELECT location_id, location_name, city, state, total_revenue, transaction_count
FROM rental_marketplace.location_performance
ORDER BY total_revenue DESC, location_id
LIMIT 1
