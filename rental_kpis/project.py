"""Where the project's files are, and the one archive that ships the library to EMR.

Standard library only. The zip is the project's packaging rule made concrete: it holds the
package root's modules (all standard-library only) and ``spark/``, nothing else, so a step
that imports pandas, duckdb or boto3 by mistake fails on the first local run, not on a cluster.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
EMR_STEPS_DIR = PROJECT_DIR / "emr_steps"
NOTEBOOK_DIR = PROJECT_DIR / "notebooks"
IAM_POLICY_DIR = PROJECT_DIR / "iam_policies"
STATE_MACHINE_FILE = PROJECT_DIR / "stepfunctions" / "rental_pipeline.asl.json"
LIBRARY_ZIP = "rental_kpis.zip"
# The one setting that points every notebook and command at another lake folder.
LAKE_VARIABLE = "RENTAL_KPIS_LAKE"
SHIPPED_PACKAGES = ("spark",)  # sub-packages that go to EMR besides the root modules


def default_lake(base: Path = Path()) -> Path:
    """The lake folder when none is given: ``$RENTAL_KPIS_LAKE`` if set, else ``base/lake``."""
    return Path(os.environ.get(LAKE_VARIABLE) or base / "lake")


def shipped_files() -> list[Path]:
    """The files of the EMR archive: root ``*.py`` plus everything under ``spark/``."""
    files = sorted(PACKAGE_DIR.glob("*.py"))
    for package in SHIPPED_PACKAGES:
        files += sorted(
            path
            for path in (PACKAGE_DIR / package).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        )
    return files


def build_library_zip(dest_dir: Path) -> Path:
    """Zip the EMR part of ``rental_kpis`` for ``--py-files``, exactly as it ships to EMR."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / LIBRARY_ZIP
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in shipped_files():
            archive.write(path, Path("rental_kpis") / path.relative_to(PACKAGE_DIR))
    return target


if __name__ == "__main__":  # `make lint` checks these files against the cluster's Python
    print("\n".join(str(p) for p in shipped_files() if p.suffix == ".py"))
