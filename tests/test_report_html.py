"""The final report's HTML on lakes built in seconds (``report_lake``: KPI tables from the
DuckDB reference, no Spark): numbers formatted for readers, the definitions, and hostile text in
every text column the report shows, opened in a real headless Chromium."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import pytest
from report_lake import PAYLOADS, USER_ID_PAYLOAD, build_lake, edit_rentals

from rental_kpis.report import notebooks as report

RUN_ID = "report-html-run"


def build_report(root: Path, hostile: bool) -> Path:
    build_lake(root, RUN_ID, hostile=hostile)
    result = report.build(
        root / "lake", root / "out", root / "raw", run_id=RUN_ID, notebooks=(report.FINAL,)
    )
    return result.html


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> str:
    return build_report(tmp_path_factory.mktemp("plain"), hostile=False).read_text()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    return build_report(tmp_path_factory.mktemp("hostile"), hostile=True)


def visible_text(page: str) -> str:
    """The text a reader sees in the report's body: markup removed, entities decoded."""
    body = page[page.index("<main") :]
    body = re.sub(r"<(style|script)\b.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def it_sanitises_markup_to_the_tags_the_report_uses():
    markup = (
        '<table class="report-table"><tr><th>a</th><td class="num">1</td></tr></table>'
        "<script>alert(1)</script><img src=x onerror=alert(2)>"
        '<img src="data:image/png;base64,iVBORw0KGgo=" alt="chart">'
        '<a href="javascript:alert(3)">x</a><div style="color:red" onclick="alert(4)">y</div>'
    )
    clean = report.sanitised(markup)
    assert '<table class="report-table">' in clean and '<td class="num">1</td>' in clean
    assert '<img src="data:image/png;base64,iVBORw0KGgo=" alt="chart">' in clean
    assert "<script" not in clean and "onerror" not in clean.replace("&lt;", "")
    assert "javascript:" not in clean and "onclick" not in clean and "style=" not in clean
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in clean


# Written as identifiers or dates, not quantities: years, dates, months, ids, versions.
NOT_QUANTITIES = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]?[\d:.+]*|\b\d{4}-\d{2}\b|\(\d+\)|#\d+|\d+\.\d+\.\d+|"
    r"\b(19|20)\d{2}\b|" + re.escape(RUN_ID)
)


@pytest.mark.slow
def it_puts_thousands_separators_on_every_number_of_a_thousand_or_more(plain):
    text = NOT_QUANTITIES.sub(" ", visible_text(plain))
    bare = re.findall(r"(?<![\d,.])\d{4,}(?![\d,])", text)
    assert not bare, bare[:10]
    assert re.search(r"Rentals \d,\d{3}", text)  # the headline has one at least
    assert re.findall(r"\$\d{1,3}(?:,\d{3})+\b", text)  # and so do amounts


@pytest.mark.slow
def it_has_a_definitions_section_consistent_with_the_headline(plain):
    text = visible_text(plain)
    definitions = text[text.index("Definitions") : text.index("Run facts")]
    for term in ("Revenue", "Rental", "Active user", "Utilization", "About the same"):
        assert term in definitions
    days = re.search(r"Period \S+ to \S+ \((\d+) days\)", text).group(1)
    assert f"against the headline's {days} calendar days of rental starts" in definitions


@pytest.mark.slow
def it_shows_no_snake_case_labels_and_no_value_header(plain):
    text = visible_text(plain)
    shown = text[: text.index("Definitions")]  # definitions name the columns they define
    assert not re.search(r"\b[a-z]+_[a-z_]+\b", shown), re.findall(r"\b[a-z]+_[a-z_]+\b", shown)
    assert not re.search(r"<th[^>]*>\s*(value|fact)\s*</th>", plain)


@pytest.mark.slow
def it_escapes_hostile_text_in_the_html(hostile):
    page = hostile.read_text()
    main = page[page.index("<main") :]
    assert not re.search(r"<(script|svg|iframe|details)\b", main)
    assert not re.search(r"<img\b(?![^>]*src=\"data:image/png;base64,)", main)
    assert not re.search(r"\son\w+=", re.sub(r"&[^;]+;", "", re.sub(r">[^<]*<", "><", main)))


@pytest.mark.slow
def it_shows_hostile_text_literally_and_runs_none_of_it_in_a_browser(hostile):
    if report.find_browser() is None:
        pytest.skip(f"no Chromium on PATH: {report.INSTALL_HINT}")
    from selenium.common.exceptions import NoAlertPresentException

    with report.headless_browser() as driver:
        driver.get(hostile.resolve().as_uri())
        time.sleep(1.0)  # onerror/onload/ontoggle handlers would have fired by now
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text  # noqa: B018 (raises when no dialog is open)
        shown = driver.execute_script("return document.body.innerText")
        widths = driver.execute_script(
            "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)"
        )
    for (dataset, column), payload in PAYLOADS.items():
        if column == "first_name":  # only its initial is shown: "<."
            assert "<.<. (" in shown
            continue
        if column == "last_name":
            continue  # only its initial too (checked above)
        assert payload in shown, (dataset, column)
    assert USER_ID_PAYLOAD in shown
    assert len(widths) >= 8 and all(w > 0 for w in widths), widths


# ---------------------------------------------------------------- whatever a run accepts


def far_years(i: int, row: dict[str, str]) -> dict[str, str]:
    """Four rentals moved to years a run accepts beyond pandas' nanosecond range (1677-2262)."""
    year = {0: "0001", 1: "1600", 2: "2300", 3: "9999"}.get(i)
    if year:
        row["rental_start_time"], row["rental_end_time"] = (
            f"{year}-06-01 10:00:00", f"{year}-06-01 12:00:00"
        )  # fmt: skip
    return row


def no_valid_amount(i: int, row: dict[str, str]) -> dict[str, str]:
    return {**row, "total_amount": "x"}  # every rental unparseable_total_amount


@pytest.mark.slow
@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (far_years, "Period 0001-06-01 to 9999-06-01 (3,651,695 days)"),
        (no_valid_amount, "No location has revenue: there are no valid rentals."),
    ],
    ids=["years 0001 to 9999", "zero valid rentals"],
)
def it_reports_on_whatever_rentals_a_run_accepts(tmp_path, edit, says):
    build_lake(tmp_path, RUN_ID, transactions=300, edit=lambda raw: edit_rentals(raw, edit))
    result = report.build(
        tmp_path / "lake", tmp_path / "out", tmp_path / "raw", run_id=RUN_ID,
        notebooks=(report.FINAL,),
    )  # fmt: skip
    text = visible_text(result.html.read_text())
    assert says in text
    assert not re.findall(r".{30}(?:\bnan\b|NaN|None|\binf\b).{30}", text)
