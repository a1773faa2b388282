"""Property-based: random raw folders, written byte by byte, through the reader and SPEC §3.

Hypothesis builds four datasets of random records (quotes, commas, newlines, unicode, empty
and blank fields, shuffled and extra columns, CRLF, BOM, gzip and several files) and damages
some of them with a defect of every rejection reason. Each record knows what it should become,
so the suite checks, for every dataset:

- reconciliation is exact: records written = valid + rejected + deduplicated, and per reason;
- every valid row equals its source record field by field (typed as SPEC §1 says);
- every rejected row keeps its raw text (the fields as written, and the record of a malformed
  row) and carries the reason its defect calls for;
- nothing raises;
- each dataset reads to the same rows whole (``multiLine``) and line by line, its files split
  every few bytes (``line_reads``): half the worlds write no line break inside a field, so
  that their uncompressed files are read line by line, and the checks above run on those
  rows.

``make test`` runs a few examples (profile ``ci``, derandomized so CI is repeatable);
``make fuzz`` runs many more with fresh randomness (profile ``fuzz``). Profiles: conftest.py.
"""

from __future__ import annotations

import gzip
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from pyspark.sql import functions as F
from split_reads import split_files

from rental_kpis.layout import DATASETS
from rental_kpis.spark.execution import flag_in_memory
from rental_kpis.spark.line_reads import ALL, NONE, line_readable
from rental_kpis.spark.readers import BYTES, SUSPECT, UTF8, read_raw
from rental_kpis.spark.schemas import (
    DIMENSION_KEYS,
    RAW_COLUMNS,
    REASONS,
    REJECTION_REASON,
    column_names,
)
from rental_kpis.spark.validation import (
    RAW_LINE,
    curated_rows,
    rejected_rows,
    summarise,
)

TX = "rental_transactions"
MALFORMED = "malformed_row"

# Text of any kind a field may hold: RFC 4180 specials, unicode, a real U+FFFD. No NUL (a
# defect of its own) and no CR (a CR LF inside a quoted field reads as LF: docs/validation.md).
TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(",\"\n \\;'ÀéßЖ中€😀\ufffd")),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"),
    ),
    max_size=6,
)

# Typed raw values: (text as written, the value curated/ holds). A value that does not parse
# is null in a dimension's curated row (docs/validation.md, 7).
INTS = [("1", 1), (" 42 ", 42), ("-7", -7), ("007", 7), ("1.5", None), ("x", None), ("", None)]
DOUBLES = [("30.2", 30.2), ("-97.7", -97.7), (" 1e2", 100.0), (".5", 0.5), ("NaN", None),
           ("1e309", None), ("inf", None), ("", None)]  # fmt: skip
# Dates at the edges of Spark's and pandas' ranges too: year 0001, before the Gregorian reform
# (1582-10-15; 1582-10-10 is one of the days the Julian calendar skipped, 1500-02-29 a Julian
# leap day that no proleptic Gregorian year has), before 1900 (INT96 timestamps), around
# pandas' nanosecond bounds (1677-09-21 to 2262-04-11) and year 9999. Curated rows are read
# back from Parquet, so each of them is written as the step writes it (docs/validation.md).
ISO_DATES = [("2024-02-29", date(2024, 2, 29)), ("2023-02-29", None), ("2024-1-01", None),
             ("", None), ("0001-01-01", date(1, 1, 1)), ("1500-02-29", None),
             ("1581-12-31", date(1581, 12, 31)), ("1582-10-10", date(1582, 10, 10)),
             ("1583-01-01", date(1583, 1, 1)), ("1899-12-31", date(1899, 12, 31)),
             ("1900-01-01", date(1900, 1, 1)), ("2262-04-12", date(2262, 4, 12)),
             ("2263-01-01", date(2263, 1, 1)), ("9999-12-31", date(9999, 12, 31)),
             ("10000-01-01", None)]  # fmt: skip
DMY_DATES = [("31-12-2025", date(2025, 12, 31)), ("2025-12-31", None), ("30-02-2024", None),
             ("01-01-0001", date(1, 1, 1)), ("01-01-1500", date(1500, 1, 1)),
             ("29-02-1500", None), ("15-10-1582", date(1582, 10, 15)),
             ("01-01-2263", date(2263, 1, 1)), ("31-12-9999", date(9999, 12, 31))]  # fmt: skip
DMY_STAMPS = [("15-01-2024 08:30:00", "2024-01-15 08:30:00"), ("15-01-2024", None),
              ("01-01-0001 00:00:00", "0001-01-01 00:00:00"),
              ("04-10-1582 12:00:00", "1582-10-04 12:00:00"),
              ("31-12-1899 23:59:59", "1899-12-31 23:59:59"),
              ("12-04-2262 00:00:00", "2262-04-12 00:00:00"),
              ("31-12-9999 23:59:59", "9999-12-31 23:59:59")]  # fmt: skip
# The days a rental starts on (it ends the same day or the next).
RENTAL_DAYS = [
    date(2024, 3, 1), date(1, 1, 1), date(1500, 2, 28), date(1581, 12, 31), date(1582, 10, 4),
    date(1582, 10, 15), date(1583, 1, 1), date(1899, 12, 31), date(1900, 1, 1),
    date(2262, 4, 11), date(2263, 1, 1), date(9999, 12, 30),
]  # fmt: skip
POOLS = {"int": INTS, "double": DOUBLES}
AMOUNTS = [("20", 20.0), ("0", 0.0), ("12.5", 12.5), (" 1e2 ", 100.0), ("0.0000000001", 1e-10),
           ("9999999999999.99", 9999999999999.99)]  # fmt: skip
BAD_AMOUNTS = ["NaN", "Infinity", "1e309", "-1e309", "1e28", "0.00000000001",
               "12345678901234567", "1,5", "", " "]  # fmt: skip
BAD_STAMPS = ["2024-02-30 10:00:00", "2024-03-01T10:00:00", "2024-3-01 10:00:00", "", "x"]
BAD_LOCATIONS = ["1.5", "abc", "99999999999", "", " "]
BLANK = ["", " ", "   "]


@dataclass
class Record:
    """One record: its fields as text, what validation must say of it, and how it is damaged.

    ``damage`` is None, ``"wider"``/``"narrower"`` (a field too many or too few),
    ``"latin1"`` (``José`` in Latin-1), ``"byte"`` (a stray 0xFF) or ``"nul"`` (a NUL byte)
    in ``damaged_column``: all ``malformed_row``.
    """

    values: dict[str, str]
    reason: str | None
    curated: dict[str, object] | None = None  # the typed row curated/ must hold
    damage: str | None = None
    damaged_column: str = ""
    copies: int = 1


@dataclass
class Layout:
    """How a dataset's files look on disk (the same records, any of these ways)."""

    columns: list[str]  # file order, maybe with an extra column
    files: list[str]  # names; records are dealt round-robin
    crlf: bool
    bom: bool
    quote_all: bool
    final_newline: bool


@dataclass
class World:
    records: dict[str, list[Record]] = field(default_factory=dict)
    layouts: dict[str, Layout] = field(default_factory=dict)
    one_line: bool = False  # no line break inside any field: every record is one line


# ---------------------------------------------------------------- writing bytes


def needs_quotes(text: str) -> bool:
    return any(c in text for c in ',"\n\r')


TAILS = {"latin1": "José".encode("latin-1"), "byte": b"\xff", "nul": b"\x00"}


def field_bytes(text: str, quote: bool, tail: bytes = b"") -> bytes:
    """One field as RFC 4180 writes it (quoted when it must be, or always), ``tail`` inside."""
    raw = text.encode("utf-8") + tail
    if quote or needs_quotes(text):
        return b'"' + raw.replace(b'"', b'""') + b'"'
    return raw


def record_cells(record: Record, layout: Layout) -> list[bytes]:
    """The record's fields in file order, as bytes (damaged as the record says)."""
    cells = [
        field_bytes(
            record.values.get(name, "extra"),
            layout.quote_all,
            TAILS.get(record.damage or "", b"") if name == record.damaged_column else b"",
        )
        for name in layout.columns
    ]
    if record.damage == "wider":
        return [*cells, b"more"]
    if record.damage == "narrower":
        return cells[:-1]
    return cells


def record_bytes(record: Record, layout: Layout) -> bytes:
    return b",".join(record_cells(record, layout))


def write_dataset(folder: Path, records: list[Record], layout: Layout) -> None:
    folder.mkdir(parents=True)
    newline = b"\r\n" if layout.crlf else b"\n"
    header = b",".join(field_bytes(c, layout.quote_all) for c in layout.columns)
    lines: list[list[bytes]] = [[] for _ in layout.files]
    flat = [r for r in records for _ in range(r.copies)]
    for i, record in enumerate(flat):
        lines[i % len(layout.files)].append(record_bytes(record, layout))
    for name, body in zip(layout.files, lines, strict=True):
        data = (b"\xef\xbb\xbf" if layout.bom else b"") + header + newline
        data += newline.join(body) + (newline if body and layout.final_newline else b"")
        (folder / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)


# ---------------------------------------------------------------- what each record must become


def text_or_none(text: str) -> str | None:
    """A raw field as the reader returns it: an empty field is null."""
    return text if text != "" else None


def typed_string(text: str) -> str | None:
    """Blank is missing (docs/validation.md, 2): only spaces count as blank here, like trim."""
    return text if text.strip(" ") else None


def expected_raw(record: Record, layout: Layout) -> tuple[dict, str | None]:
    """The raw columns and raw_line of a rejected row, as read back from the file."""
    if record.damage in ("wider", "narrower"):
        return {}, record_bytes(record, layout).decode("utf-8")
    if record.damage in TAILS:
        texts = [c.decode("utf-8", errors="replace") for c in record_cells(record, layout)]
        fields = [unquote(t) for t in texts]
        line = ",".join(quote_if_needed(f) for f in fields)
        raw = dict(zip(layout.columns, fields, strict=True))
        return {n: text_or_none(raw[n]) for n in record.values}, line
    return {n: text_or_none(t) for n, t in record.values.items()}, None


def unquote(text: str) -> str:
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        return text[1:-1].replace('""', '"')
    return text


def quote_if_needed(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\r\n') else text


# ---------------------------------------------------------------- strategies


@st.composite
def unique_texts(draw, n: int, prefix: str) -> list[str]:
    """``n`` distinct ids that are never blank: a unique prefix, then random text."""
    return [f"{draw(st.sampled_from(['', ' ']))}{prefix}{i}:{draw(TEXT)}" for i in range(n)]


def pick(draw, pool: list[tuple[str, object]]) -> tuple[str, object]:
    return draw(st.sampled_from(pool))


@st.composite
def dimension_record(draw, dataset: str, key_text: str, key_value: object) -> Record:
    values, curated = {}, {}
    for column in RAW_COLUMNS[dataset]:
        name = column.name
        if name == DIMENSION_KEYS[dataset]:
            values[name], curated[name] = key_text, key_value
        elif column.kind in POOLS:
            values[name], curated[name] = pick(draw, POOLS[column.kind])
        elif column.kind == "date":
            pool = ISO_DATES if column.fmt == "yyyy-MM-dd" else DMY_DATES
            values[name], curated[name] = pick(draw, pool)
        elif column.kind == "timestamp":
            values[name], curated[name] = pick(draw, DMY_STAMPS)
        else:
            text = draw(st.one_of(TEXT, st.sampled_from(BLANK)))
            values[name], curated[name] = text, typed_string(text)
    return Record(values, None, curated)


def damage_bytes(draw, record: Record, columns: list[str]) -> Record:
    """A byte-level defect: malformed_row whatever the fields say."""
    kind = draw(st.sampled_from(["wider", "narrower", *TAILS]))
    column = draw(st.sampled_from(columns))
    return Record(dict(record.values), MALFORMED, damage=kind, damaged_column=column)


@st.composite
def dimension(draw, dataset: str) -> tuple[list[Record], list[object]]:
    """Valid rows (whose keys rentals may use) and rejected ones with fresh keys."""
    n = draw(st.integers(1, 4))
    key = DIMENSION_KEYS[dataset]
    if dataset == "locations":
        ids = list(range(1, n + 1))
        texts = [draw(st.sampled_from([str(i), f"0{i}", f" {i} "])) for i in ids]
        keys: list[object] = ids
    else:
        texts = draw(unique_texts(n, "K"))
        keys = list(texts)
    records = [draw(dimension_record(dataset, t, k)) for t, k in zip(texts, keys, strict=True)]
    defects = draw(st.lists(st.sampled_from(REASONS[dataset]), max_size=4))
    marked = next(c.name for c in RAW_COLUMNS[dataset] if c.kind == "string" and c.name != key)
    for i, defect in enumerate(defects):
        fresh = str(901 + i) if dataset == "locations" else f"F{i}:{draw(TEXT)}"
        base = draw(dimension_record(dataset, fresh, None))
        base.values[marked] += f"#{i}"  # rejected rows never collapse into one another
        if defect == "missing_key":
            blank = ["", " ", "1.5", "k"] if dataset == "locations" else BLANK
            base.values[key] = draw(st.sampled_from(blank))
            records.append(Record(base.values, "missing_key"))
        elif defect == MALFORMED:
            records.append(damage_bytes(draw, base, column_names(dataset)))
        else:  # two rows of one key with different content
            other = {**base.values, marked: base.values[marked] + "~"}
            records += [Record(base.values, defect), Record(other, defect)]
    return records, keys


def stamp(day: date, hour: int) -> str:
    """``day`` at ``hour`` (which may pass midnight) as SPEC §1 writes a rental's times."""
    moment = datetime(day.year, day.month, day.day) + timedelta(hours=hour)
    return f"{moment.year:04d}-{moment:%m-%d %H:%M:%S}"


@st.composite
def rental(draw, i: int, users: list, vehicles: list, locations: list) -> Record:
    """A valid rental, or one damaged so that exactly one SPEC §3 reason is its first."""
    day = draw(st.sampled_from(RENTAL_DAYS))
    start, hours = draw(st.integers(0, 20)), draw(st.integers(1, 12))
    amount, amount_value = pick(draw, AMOUNTS)
    pickup, dropoff = draw(st.sampled_from(locations)), draw(st.sampled_from(locations))
    values = {
        "rental_id": f"{draw(st.sampled_from(['', ' ']))}R{i}:{draw(TEXT)}",
        "user_id": draw(st.sampled_from(users)),
        "vehicle_id": draw(st.sampled_from(vehicles)),
        "rental_start_time": stamp(day, start),
        "rental_end_time": stamp(day, start + hours),
        "pickup_location": draw(st.sampled_from([str(pickup), f" {pickup}", f"0{pickup}"])),
        "dropoff_location": str(dropoff),
        "total_amount": amount,
    }
    curated = {
        **values,
        "rental_start_time": stamp(day, start),
        "rental_end_time": stamp(day, start + hours),
        "pickup_location": pickup,
        "dropoff_location": dropoff,
        "total_amount": amount_value,
    }
    reason = draw(st.sampled_from([None, None, None, *REASONS[TX]]))
    if reason in (None, "conflicting_rental_id"):
        return Record(values, None, curated)  # conflicts are made in pairs by ``world``
    if reason == MALFORMED:
        return damage_bytes(draw, Record(values, None), column_names(TX))
    changed = dict(values)
    if reason == "missing_rental_id":
        changed["rental_id"] = draw(st.sampled_from(BLANK))
        changed["vehicle_id"] = f"V{i}"  # two such rows never collapse into one another
    elif reason in ("unparseable_user_id", "unparseable_vehicle_id"):
        changed[reason.removeprefix("unparseable_")] = draw(st.sampled_from(BLANK))
    elif reason in ("unparseable_rental_start_time", "unparseable_rental_end_time"):
        changed[reason.removeprefix("unparseable_")] = draw(st.sampled_from(BAD_STAMPS))
    elif reason in ("unparseable_pickup_location", "unparseable_dropoff_location"):
        changed[reason.removeprefix("unparseable_")] = draw(st.sampled_from(BAD_LOCATIONS))
    elif reason == "unparseable_total_amount":
        changed["total_amount"] = draw(st.sampled_from(BAD_AMOUNTS))
    elif reason == "non_positive_duration":
        changed["rental_start_time"] = stamp(day, max(start, 3))
        changed["rental_end_time"] = stamp(day, max(start, 3) - draw(st.integers(0, 3)))
    elif reason == "negative_amount":
        changed["total_amount"] = "-" + draw(st.sampled_from(["1", "0.5", "20"]))
    elif reason == "unknown_user":
        changed["user_id"] = f"nobody{i}"
    elif reason == "unknown_vehicle":
        changed["vehicle_id"] = f"no-car{i}"
    elif reason == "unknown_pickup_location":
        changed["pickup_location"] = "777"
    elif reason == "unknown_dropoff_location":
        changed["dropoff_location"] = "778"
    return Record(changed, reason)


@st.composite
def layout(draw, dataset: str) -> Layout:
    columns = draw(st.permutations(column_names(dataset)))
    if draw(st.booleans()):
        columns.insert(draw(st.integers(0, len(columns))), "note")
    suffixes = draw(st.lists(st.sampled_from([".csv", ".CSV", ".csv.gz"]), min_size=1, max_size=2))
    return Layout(
        columns=columns,
        files=[f"part-{i}{suffix}" for i, suffix in enumerate(suffixes)],
        crlf=draw(st.booleans()),
        bom=draw(st.booleans()),
        quote_all=draw(st.booleans()),
        final_newline=draw(st.booleans()),
    )


@st.composite
def worlds(draw) -> World:
    world = World()
    keys = {}
    for name in DIMENSION_KEYS:
        world.records[name], keys[name] = draw(dimension(name))
    rentals = [
        draw(rental(i, keys["users"], keys["vehicles"], keys["locations"]))
        for i in range(draw(st.integers(0, 14)))
    ]
    valid = [r for r in rentals if r.reason is None]
    for r in draw(st.lists(st.sampled_from(valid), max_size=2, unique_by=id)) if valid else []:
        twin = Record({**r.values, "total_amount": "31"}, "conflicting_rental_id")
        r.reason, r.curated = "conflicting_rental_id", None
        rentals.append(twin)
    world.records[TX] = rentals
    for records in world.records.values():
        twice = (
            st.lists(st.sampled_from(records), max_size=2, unique_by=id) if records else st.just([])
        )
        for record in draw(twice):
            record.copies += 1  # an exact duplicate, written again byte for byte
    for name in DATASETS:
        world.layouts[name] = draw(layout(name))
    world.one_line = draw(st.booleans())
    if world.one_line:
        for records in world.records.values():
            for record in records:
                record.values = {k: without_line_feed(v) for k, v in record.values.items()}
                if record.curated is not None:
                    record.curated = {k: without_line_feed(v) for k, v in record.curated.items()}
    return world


def without_line_feed(value):
    """``value`` with every LF made ``_`` (a text's meaning for SPEC §3 stays: LF is not a
    space, and every id keeps its unique prefix, so no two records become one)."""
    return value.replace("\n", "_") if isinstance(value, str) else value


# ---------------------------------------------------------------- the property


def typed_view(df, dataset: str):
    """Curated rows with timestamps as text (collect() would shift them by the local zone)."""
    return df.select(
        *(
            F.date_format(c.name, "yyyy-MM-dd HH:mm:ss").alias(c.name)
            if c.kind == "timestamp"
            else F.col(c.name)
            for c in RAW_COLUMNS[dataset]
        )
    )


def read_as_the_step_does(spark, dataset: str, uri: str, fast: bool):
    """``read_raw`` as ``execution.Validation`` uses it: the CSV reader decoding UTF-8
    first, byte by byte when a record is suspect; or byte by byte only."""
    if fast:
        raw = read_raw(spark, dataset, uri, text=UTF8)
        if raw.where(F.col(SUSPECT)).limit(1).count() == 0:
            return raw.drop(SUSPECT)
    return read_raw(spark, dataset, uri, text=BYTES)


def raw_rows(df) -> list[tuple]:
    return sorted((tuple(row) for row in df.collect()), key=repr)


def line_files(spark, folder: Path) -> set[str]:
    """The files of ``folder`` that ``line_reads.line_readable`` lets be read line by line."""
    heads = {str(p): p.read_bytes().split(b"\n", 1)[0] + b"\n" for p in folder.iterdir()}
    with split_files(spark, ALL):
        return set(line_readable(spark, heads))


def expected_line_files(folder: Path) -> set[str]:
    """In a world without line breaks in fields: every uncompressed file, unless a line of it
    ends in a form feed (a malformed record's text would lose it read line by line) or it
    holds a NUL byte (the line reader may drop one before a closing quote)."""
    return {
        str(path)
        for path in folder.iterdir()
        if not path.name.endswith(".gz")
        and b"\x00" not in path.read_bytes()
        and not any(
            line.removesuffix(b"\r").endswith(b"\x0c") for line in path.read_bytes().split(b"\n")
        )
    }


@given(world=worlds(), fast=st.booleans())
def it_reads_and_validates_any_rfc_4180_records_exactly(spark, world: World, fast: bool):
    """Each example takes one way of reading and collapsing: the plain one, or the step's
    faster one (UTF-8 first, shared keys counted first); both must be exact. Every dataset
    is read both whole and line by line where ``line_reads`` allows it (split every 16
    bytes): the rows must be the same, and the checks run on the rows read line by line."""
    with tempfile.TemporaryDirectory(prefix="rental_kpis_prop_") as tmp:
        root = Path(tmp)
        for name in DATASETS:
            write_dataset(root / name, world.records[name], world.layouts[name])
        if world.one_line:  # the line reader is taken, not merely allowed
            for name in DATASETS:
                assert line_files(spark, root / name) == expected_line_files(root / name), name
        with split_files(spark, NONE):
            whole = {
                name: raw_rows(read_as_the_step_does(spark, name, str(root / name), fast))
                for name in DATASETS
            }
        with split_files(spark, ALL):
            frames = {
                name: read_as_the_step_does(spark, name, str(root / name), fast)
                for name in DATASETS
            }
        with split_files(spark, ALL, split_bytes=16):
            for name in DATASETS:
                assert raw_rows(frames[name]) == whole[name], name
        flagged = flag_in_memory(frames, shared_keys_first=fast)
        for name in DATASETS:
            curated = through_parquet(spark, curated_rows(flagged[name], name), root / name)
            check_dataset(name, flagged[name], curated, world.records[name], world.layouts[name])


def through_parquet(spark, curated, folder: Path):
    """``curated`` written to Parquet under ``folder`` and read back, as the step writes it and
    the KPI steps read it."""
    path = str(folder / "curated")
    curated.write.parquet(path)
    return spark.read.schema(curated.schema).parquet(path)


def check_dataset(name: str, flagged, curated_frame, records: list[Record], layout: Layout) -> None:
    counts = summarise(flagged, name)
    rejected = Counter(r.reason for r in records if r.reason)
    assert counts.as_dict() == {
        "input_rows": sum(r.copies for r in records),
        "valid_rows": sum(1 for r in records if r.reason is None),
        "rejected_rows": sum(rejected.values()),
        "deduplicated_rows": sum(r.copies - 1 for r in records),
        "rejected_by_reason": {reason: rejected.get(reason, 0) for reason in REASONS[name]},
    }, name
    assert counts.reconciles

    columns = column_names(name)
    curated = sorted((tuple(row) for row in typed_view(curated_frame, name).collect()), key=repr)
    expected = sorted(
        (tuple(r.curated[c] for c in columns) for r in records if r.reason is None), key=repr
    )
    assert curated == expected, name

    malformed: dict[str, list[tuple]] = {}
    actual = Counter()
    for row in rejected_rows(flagged, name).collect():
        raw = tuple(row[c] for c in columns)
        if row[REJECTION_REASON] == MALFORMED:
            malformed.setdefault(row[RAW_LINE], []).append(raw)
            actual[(MALFORMED, row[RAW_LINE])] += 1
        else:
            assert row[RAW_LINE] is None
            actual[(row[REJECTION_REASON], raw)] += 1
    wanted = Counter()
    for record in records:
        if record.reason is None:
            continue
        fields, line = expected_raw(record, layout)
        if record.reason == MALFORMED:
            wanted[(MALFORMED, line)] += 1
            if fields:  # a record of the right width keeps its fields, decoded
                assert tuple(fields[c] for c in columns) in malformed.get(line, []), name
        else:
            wanted[(record.reason, tuple(fields[c] for c in columns))] += 1
    assert actual == wanted, name
