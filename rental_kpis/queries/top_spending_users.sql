-- The ten users who spent the most, with their rank.
SELECT user_id, first_name, last_name, total_spent, rental_count, spend_rank
FROM rental_marketplace.user_metrics
ORDER BY total_spent DESC, user_id
LIMIT 10
