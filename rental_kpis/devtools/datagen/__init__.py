"""Synthetic marketplace data with SPEC §1's shape, and exactly-counted defects (SPEC §3).

Vectorised with numpy and pyarrow. The same seed gives the same files. With a defect rate,
every rejection reason is injected a known number of times; ``generation_manifest.json``
records the counts the validation summary must reproduce.
"""

from rental_kpis.devtools.datagen._defects import defects_by_dataset, defects_per_reason
from rental_kpis.devtools.datagen._files import MANIFEST, check_out, generated_files
from rental_kpis.devtools.datagen._generate import generate
from rental_kpis.devtools.datagen._shape import PRICE_PER_HOUR, VEHICLE_TYPES, Sizes

__all__ = [
    "MANIFEST",
    "PRICE_PER_HOUR",
    "VEHICLE_TYPES",
    "Sizes",
    "check_out",
    "defects_by_dataset",
    "defects_per_reason",
    "generate",
    "generated_files",
]
