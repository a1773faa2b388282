"""The KPI steps as steps: whole-table overwrite, idempotence, EMR-safe imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sample_rows import location, rental, user, vehicle
from tables import assert_same_table, read_table

from rental_kpis.layout import TABLES, Lake
from rental_kpis.spark.steps import run_step


def write_raw(root: Path, rentals: list[dict]) -> None:
    rows = {
        "locations": [location("1"), location("2")],
        "vehicles": [vehicle("V1"), vehicle("V2", "premium")],
        "users": [user("U1"), user("U2")],
        "rental_transactions": rentals,
    }
    for dataset, data in rows.items():
        folder = root / "raw" / dataset
        folder.mkdir(parents=True, exist_ok=True)
        header = list(data[0])
        lines = [",".join(header)] + [",".join(f'"{row[c]}"' for c in header) for row in data]
        (folder / "part.csv").write_text("\n".join(lines) + "\n")


def run_all(spark, lake: Lake, run_id: str) -> dict:
    return {
        step: run_step(spark, step, lake, run_id)
        for step in ("validate_raw", "vehicle_location_metrics", "user_transaction_metrics")
    }


def month_folders(lake: Lake) -> list[str]:
    root = Path(lake.processed("daily_metrics"))
    return sorted(str(p.relative_to(root)) for p in root.glob("year=*/month=*"))


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(str(tmp_path / "lake"))


def it_gives_identical_tables_when_run_twice(spark, lake, tmp_path):
    write_raw(
        Path(lake.root),
        [
            rental("R1", start="2024-01-05 10:00:00", end="2024-01-05 13:00:00", amount="30"),
            rental("R2", "U2", "V2", "2024-02-01 09:00:00", "2024-02-02 09:00:00", "2", "1", "480"),
        ],
    )
    run_all(spark, lake, "first")
    first = {t: read_table(lake.processed(t)) for t in TABLES}
    run_all(spark, lake, "second")
    for table in TABLES:
        assert_same_table(table, read_table(lake.processed(table)), first[table], rtol=0.0)
    assert Path(lake.processed("user_metrics"), "_SUCCESS").exists()
    summary = json.loads(Path(lake.run_summary("second", "user_transaction_metrics")).read_text())
    assert summary["tables"]["daily_metrics"]["rows"] == 2
    assert summary["tables"]["user_metrics"]["rows"] == 2


def it_drops_partitions_of_an_earlier_run_with_more_months(spark, lake):
    write_raw(
        Path(lake.root),
        [
            rental("R1", start="2024-01-05 10:00:00", end="2024-01-05 13:00:00"),
            rental("R2", start="2024-03-05 10:00:00", end="2024-03-05 13:00:00"),
        ],
    )
    run_all(spark, lake, "more")
    assert month_folders(lake) == ["year=2024/month=1", "year=2024/month=3"]
    write_raw(
        Path(lake.root), [rental("R9", start="2024-03-07 10:00:00", end="2024-03-07 11:00:00")]
    )
    run_all(spark, lake, "fewer")
    assert month_folders(lake) == ["year=2024/month=3"]
    daily = read_table(lake.processed("daily_metrics"))
    assert daily["rental_date"].astype(str).tolist() == ["2024-03-07"]


FORBIDDEN_ON_EMR = (
    "pandas",
    "duckdb",
    "boto3",
    "botocore",
    "awswrangler",
    "matplotlib",
    "pyarrow",
    "rich",
    "sqlglot",
    "papermill",
)


def it_imports_only_pyspark_and_the_standard_library_in_the_step_modules():
    code = (
        "import sys, runpy\n"
        "import rental_kpis.spark.steps, rental_kpis.spark.session\n"
        "import rental_kpis.spark.kpis, rental_kpis.spark.validation\n"
        "for script in ('validate_raw', 'vehicle_location_metrics', 'user_transaction_metrics'):\n"
        "    runpy.run_path(f'emr_steps/{script}.py', run_name='not_main')\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN_ON_EMR!r}))\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True
    )
    assert out.stdout.strip() == "[]"
