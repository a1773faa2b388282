"""How the report writes numbers, dates and values from the data: one format each."""

from __future__ import annotations

import math
import unicodedata
from datetime import date, datetime

import numpy as np
import pandas as pd

# Two numbers within this relative distance of each other are "about the same": a reader is
# not told that 8.1% beats 7.9%. Stated in the report's definitions.
TOLERANCE = 0.10


# Names a reader sees instead of the identifiers of the data (snake_case).
LABELS: dict[str, str] = {
    "high_end": "high-end",
    "rental_transactions": "rental transactions",
    "malformed_row": "malformed row",
}


# What a number without a value (an average over no rows, SPEC §4) shows as.
NOT_AVAILABLE = "n/a"


def missing(value: object) -> bool:
    """None or NaN: a value the tables do not have (SPEC §4: averages over no rows)."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def money(value: float | None) -> str:
    """The one money format of the report, tables, sentences and bar labels alike: whole
    dollars with thousands separators ($1,234,567). Prices are whole dollars per hour, so
    totals are whole; averages lose only cents. No value is "n/a"."""
    if value is None or missing(value):
        return NOT_AVAILABLE
    return f"-${-value:,.0f}" if value < 0 else f"${value:,.0f}"


def count(value: float) -> str:
    """A count with thousands separators: 20,012."""
    return f"{int(value):,}"


def percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole and not missing(part) else NOT_AVAILABLE


# Unicode's explicit directional formatting characters (UAX #9): embeddings, overrides,
# isolates and marks. In a value they reorder the text around it: a location name holding
# U+202E (right-to-left override) shows "$2,660" after it as "066,2$".
BIDI_CONTROLS = dict.fromkeys(
    map(ord, "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
)


FIRST_STRONG_ISOLATE, POP_DIRECTIONAL_ISOLATE = "\u2068", "\u2069"


def shown(value: object) -> str:
    """A value from the data as the report shows it in sentences, tables and labels: missing
    is "", bidi control characters are removed, and a value written in a right-to-left script
    is isolated (first strong isolate ... pop directional isolate), so that it can never
    reorder the numbers and words around it."""
    if missing(value):
        return ""
    text = str(value).translate(BIDI_CONTROLS)
    if any(unicodedata.bidirectional(c) in ("R", "AL") for c in text):
        return f"{FIRST_STRONG_ISOLATE}{text}{POP_DIRECTIONAL_ISOLATE}"
    return text


def human(name: object) -> str:
    """An identifier as a reader reads it: ``negative_amount`` → "negative amount"."""
    text = shown(name)
    return LABELS.get(text, text.replace("_", " "))


def user_label(first_name: object, last_name: object, user_id: object) -> str:
    """How the report names a user, in tables and charts alike: initials and the id, e.g.
    "A.L. (u1)": enough to tell users apart, no full names in a mailed report."""

    def initial(name: object) -> str:
        text = "" if missing(name) else str(name).translate(BIDI_CONTROLS).strip()
        return f"{shown(text[:1].upper())}." if text else "?."

    return f"{initial(first_name)}{initial(last_name)} ({shown(user_id)})"


def about_same(a: float, b: float, tolerance: float = TOLERANCE) -> bool:
    """True when ``a`` and ``b`` differ by at most ``tolerance`` of the larger one."""
    high = max(abs(a), abs(b))
    return high == 0 or abs(a - b) <= tolerance * high


def day(value: object) -> date:
    """A date of the tables as a ``datetime.date``, whatever form the engine gave it in (a
    date, a timestamp of any resolution, NumPy's datetime64, ISO text): every day of years
    0001-9999 that a run accepts, beyond pandas' nanosecond range (1677-2262)."""
    if isinstance(value, datetime):  # pandas' Timestamp too
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, np.datetime64):
        return value.astype("datetime64[D]").item()
    return date.fromisoformat(str(value)[:10])


def days(values: pd.Series) -> list[date]:
    """``day`` of every value of a column, in its order."""
    return [day(value) for value in values]
