"""The generated data's shape: its sizes, period and prices, and the words its rows are made of."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PRICE_PER_HOUR = {"basic": 10.0, "premium": 20.0, "high_end": 50.0}


VEHICLE_TYPES = tuple(PRICE_PER_HOUR)


PERIOD_START = np.datetime64("2024-01-01T00:00:00", "s")


PERIOD_SECONDS = 152 * 24 * 3600  # January to May: ~5 months, two DST changes in US zones


MAX_HOURS = 72


CITIES = [
    ("New York", "NY"),
    ("Los Angeles", "CA"),
    ("Chicago", "IL"),
    ("Houston", "TX"),
    ("Phoenix", "AZ"),
    ("Philadelphia", "PA"),
    ("San Antonio", "TX"),
    ("San Diego", "CA"),
    ("Dallas", "TX"),
    ("San Jose", "CA"),
    ("Austin", "TX"),
    ("Jacksonville", "FL"),
    ("Fort Worth", "TX"),
    ("Columbus", "OH"),
    ("Charlotte", "NC"),
    ("Indianapolis", "IN"),
    ("San Francisco", "CA"),
    ("Seattle", "WA"),
    ("Denver", "CO"),
    ("Washington", "DC"),
    ("Boston", "MA"),
    ("El Paso", "TX"),
    ("Nashville", "TN"),
    ("Detroit", "MI"),
    ("Oklahoma City", "OK"),
    ("Portland", "OR"),
    ("Las Vegas", "NV"),
    ("Memphis", "TN"),
    ("Louisville", "KY"),
    ("Baltimore", "MD"),
    ("Milwaukee", "WI"),
    ("Albuquerque", "NM"),
    ("Tucson", "AZ"),
    ("Fresno", "CA"),
    ("Sacramento", "CA"),
    ("Kansas City", "MO"),
    ("Mesa", "AZ"),
    ("Atlanta", "GA"),
    ("Omaha", "NE"),
    ("Colorado Springs", "CO"),
    ("Raleigh", "NC"),
    ("Long Beach", "CA"),
    ("Virginia Beach", "VA"),
    ("Miami", "FL"),
    ("Oakland", "CA"),
    ("Minneapolis", "MN"),
    ("Tulsa", "OK"),
    ("Bakersfield", "CA"),
    ("Wichita", "KS"),
    ("Arlington", "TX"),
]


FIRST_NAMES = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Chris",
    "Karen",
    "Daniel",
    "Lisa",
    "Matthew",
    "Nancy",
    "Ana",
    "Wei",
    "Fatima",
    "Oluwaseun",
    "Priya",
    "Mateo",
]


LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "O'Brien",
    "Nguyen",
    "Kim",
    "Okafor",
    "Patel",
    "Silva",
    "Rossi",
    "Müller",
    "Cohen",
]


BRANDS = [
    "Toyota",
    "Honda",
    "Ford",
    "Chevrolet",
    "Nissan",
    "Hyundai",
    "Kia",
    "Tesla",
    "BMW",
    "Mercedes-Benz",
    "Audi",
    "Lexus",
    "Volkswagen",
    "Subaru",
    "Mazda",
]


STREETS = [
    "Main St",
    "Oak Ave",
    "Maple Dr",
    "Cedar Ln",
    "Park Blvd",
    "Elm St",
    "Pine Rd",
    "Lake View Dr",
    "Washington Ave",
    "Market St",
]


SITE_KINDS = ["Airport Lot", "Downtown Garage", "Station Plaza", "Mall Parking", "Harbor Point"]


@dataclass(frozen=True)
class Sizes:
    transactions: int
    locations: int
    vehicles: int
    users: int

    @classmethod
    def for_transactions(cls, transactions: int) -> Sizes:
        """~300 locations, a vehicle per ~8 rentals, a user per ~3 rentals (a few rentals each)."""
        return cls(
            transactions=transactions,
            locations=300,
            vehicles=max(30, transactions // 8),
            users=max(30, transactions // 3),
        )

    def of(self, dataset: str) -> int:
        """The rows of ``dataset`` (one of ``layout.DATASETS``)."""
        return {
            "rental_transactions": self.transactions,
            "locations": self.locations,
            "vehicles": self.vehicles,
            "users": self.users,
        }[dataset]
