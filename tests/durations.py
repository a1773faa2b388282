"""Write ``tests/durations.json`` from a pytest JUnit XML report: the seconds each test file
took (setup and teardown included), longest first. ``make durations`` runs it; ``conftest.py``
reads the file to hand the longest files out first.

usage: python tests/durations.py REPORT.xml OUT.json
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path


def file_seconds(report: Path) -> dict[str, int]:
    """Seconds per test file name (``test_x.py``) in ``report``, longest first."""
    seconds: dict[str, float] = defaultdict(float)
    for case in ET.parse(report).iter("testcase"):
        parts = case.get("classname", "").split(".")
        module = next((p for p in parts if p.startswith("test_")), None)
        if module is not None:
            seconds[f"{module}.py"] += float(case.get("time", 0.0))
    ranked = sorted(seconds.items(), key=lambda item: (-item[1], item[0]))
    return {name: round(total) for name, total in ranked}


if __name__ == "__main__":
    report, out = map(Path, sys.argv[1:3])
    out.write_text(json.dumps(file_seconds(report), indent=2) + "\n")
