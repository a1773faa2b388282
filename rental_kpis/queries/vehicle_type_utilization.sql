-- Fleet utilization by vehicle type: rented hours over available hours.
SELECT vehicle_type, fleet_size, total_rental_hours, utilization_rate
FROM rental_marketplace.vehicle_type_performance
ORDER BY utilization_rate DESC, vehicle_type
