-- The vehicle type with the most rentals.
SELECT vehicle_type, rental_count, total_revenue, fleet_size
FROM rental_marketplace.vehicle_type_performance
ORDER BY rental_count DESC, vehicle_type
LIMIT 1
