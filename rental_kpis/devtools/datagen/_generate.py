"""``generate``: the four raw datasets and their manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rental_kpis.devtools.datagen._clean import (
    make_locations,
    make_transactions,
    make_users,
    make_vehicles,
)
from rental_kpis.devtools.datagen._defects import (
    Written,
    add_dimension_defects,
    add_transaction_defects,
    check_room,
    defects_by_dataset,
)
from rental_kpis.devtools.datagen._files import check_out, write_dataset, write_manifest
from rental_kpis.devtools.datagen._shape import Sizes
from rental_kpis.errors import UsageError
from rental_kpis.layout import DATASETS


def generate(out: Path | str, transactions: int, seed: int = 42, defect_rate: float = 0.0) -> dict:
    """Write the four raw datasets under ``out/<dataset>/`` and return the manifest.

    Parameters
    ----------
    out: folder that becomes the raw zone (``out/locations/locations.csv``…): new, empty or
        written by an earlier ``generate`` and holding only its files (``check_out``).
    transactions: clean rental rows before defects are added.
    seed: the same seed writes the same bytes.
    defect_rate: share of rows per rejection reason (0.0003 → ~6 per reason at 20,000).

    Returns
    -------
    The manifest (also written to ``out/generation_manifest.json``): sizes and, per dataset,
    the input/valid/rejected/deduplicated counts and rejected rows per reason to expect.
    """
    out = Path(out)
    _check_arguments(transactions, defect_rate)
    check_out(out)
    rng = np.random.default_rng(seed)
    sizes = Sizes.for_transactions(transactions)
    per_reason = defects_by_dataset(sizes, defect_rate)
    check_room(sizes, per_reason, defect_rate)
    written = _datasets(rng, sizes, per_reason)
    manifest = {
        "seed": seed,
        "transactions": transactions,
        "defect_rate": defect_rate,
        "sizes": sizes.__dict__,
        "datasets": {name: written[name].expected for name in DATASETS},
        "files": {
            name: str(write_dataset(out, name, written[name]).relative_to(out)) for name in DATASETS
        },
    }
    write_manifest(out, manifest)
    return manifest


def _check_arguments(transactions: int, defect_rate: float) -> None:
    if transactions < 0:
        raise UsageError(f"transactions must be 0 or more, not {transactions}")
    if not 0.0 <= defect_rate <= 1.0:
        raise UsageError(f"the defect rate must be between 0 and 1, not {defect_rate}")


def _datasets(
    rng: np.random.Generator, sizes: Sizes, per_reason: dict[str, int]
) -> dict[str, Written]:
    """The four datasets, clean rows first, then ``per_reason`` defects of each reason."""
    locations = make_locations(rng, sizes.locations)
    vehicles, vehicle_types = make_vehicles(rng, sizes.vehicles)
    users = make_users(rng, sizes.users)
    rentals = make_transactions(rng, sizes, vehicle_types, users, vehicles)
    return {
        "locations": add_dimension_defects(
            rng, "locations", locations, "location_id", per_reason["locations"]
        ),
        "vehicles": add_dimension_defects(
            rng, "vehicles", vehicles, "vehicle_id", per_reason["vehicles"]
        ),
        "users": add_dimension_defects(rng, "users", users, "user_id", per_reason["users"]),
        "rental_transactions": add_transaction_defects(
            rng, rentals, per_reason["rental_transactions"], sizes.locations
        ),
    }
