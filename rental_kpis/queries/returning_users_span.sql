-- Returning users: whole hours between their first and last rental start, longest first.
SELECT
    user_id,
    rental_count,
    date_diff('hour', first_rental_start, last_rental_start) AS hours_between_first_and_last
FROM rental_marketplace.user_metrics
WHERE rental_count > 1
ORDER BY hours_between_first_and_last DESC, user_id
LIMIT 10
