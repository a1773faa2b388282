"""Hand-made raw rows for the validation and KPI tests: small, readable, every value chosen."""

from __future__ import annotations


def location(
    location_id: str, name: str = "Airport Lot, Austin #1", city: str = "Austin", state: str = "TX"
) -> dict:
    return {
        "location_id": location_id,
        "location_name": name,
        "address": "1 Main St, Suite 2",
        "city": city,
        "state": state,
        "zip_code": "02134",
        "latitude": "30.2",
        "longitude": "-97.7",
    }


def vehicle(vehicle_id: str, vehicle_type: str = "basic", brand: str = "Toyota") -> dict:
    return {
        "active": "1",
        "vehicle_license_number": "5566778",
        "registration_name": "Lee, Ana",
        "license_type": "LIVERY",
        "expiration_date": "31-12-2025",
        "permit_license_number": "P000123",
        "certification_date": "2020-05-01",
        "vehicle_year": "2020",
        "base_telephone_number": "(555) 1234567",
        "base_address": "9 Oak Ave, Austin",
        "vehicle_id": vehicle_id,
        "last_update_timestamp": "15-01-2024 08:30:00",
        "brand": brand,
        "vehicle_type": vehicle_type,
    }


def user(user_id: str, first: str = "Ana", last: str = "Lee") -> dict:
    return {
        "user_id": user_id,
        "first_name": first,
        "last_name": last,
        "email": f"{first.lower()}@example.com",
        "phone_number": "+1 555 0100",
        "driver_license_number": "DL1",
        "driver_license_expiry": "2027-01-01",
        "creation_date": "2023-01-01",
        "is_active": "1",
    }


def rental(
    rental_id: str,
    user_id: str = "U1",
    vehicle_id: str = "V1",
    start: str = "2024-03-01 10:00:00",
    end: str = "2024-03-01 12:00:00",
    pickup: str = "1",
    dropoff: str = "2",
    amount: str = "20.0",
) -> dict:
    return {
        "rental_id": rental_id,
        "user_id": user_id,
        "vehicle_id": vehicle_id,
        "rental_start_time": start,
        "rental_end_time": end,
        "pickup_location": pickup,
        "dropoff_location": dropoff,
        "total_amount": amount,
    }
