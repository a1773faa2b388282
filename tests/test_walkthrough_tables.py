"""The walkthrough's pure helpers that put data into notebook outputs: shown as text, never as
markup."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from nbconvert import HTMLExporter

from rental_kpis.report import notebooks as report
from rental_kpis.walkthrough.tables import markdown_text

HOSTILE = "<img src=x onerror=alert(1)>"


def it_escapes_markup_in_markdown_text():
    assert markdown_text(f"/tmp/{HOSTILE}/a_b*c`d [x](y) | & \\ ~") == (
        "/tmp/&lt;img src=x onerror=alert(1)&gt;/a\\_b\\*c\\`d \\[x\\](y) \\| &amp; \\\\ \\~"
    )


@pytest.mark.slow
def it_shows_a_hostile_lake_path_as_text_in_sprint_1(tmp_path):
    """Notebook 01 says which lake it works on in a Markdown output; a lake folder named like an
    HTML element showed as that element, and ran when the notebook was converted to HTML."""
    lake = tmp_path / HOSTILE
    raw = Path(__file__).resolve().parents[1] / "data" / "raw"
    name = report.NOTEBOOKS[0]
    report.build(lake, tmp_path / "out", raw, notebooks=(name,))
    executed = tmp_path / "out" / f"{name}.ipynb"
    body, _ = HTMLExporter().from_filename(str(executed))
    assert not re.search(r"<img\b[^>]*onerror", body)  # as an element, the handler runs
    assert f"local lake {lake.parent}/&lt;img src=x onerror=alert(1)&gt;" in body
