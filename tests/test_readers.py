"""Reading raw CSV files: headers by name, quoted commas, malformed lines, clear input errors,
and files read line by line exactly as they read whole."""

from __future__ import annotations

import gzip
import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from split_reads import split_files

from rental_kpis.errors import MissingColumnsError, MissingDatasetError
from rental_kpis.layout import DATASETS
from rental_kpis.spark.line_reads import ALL, AUTO, NONE, line_readable
from rental_kpis.spark.readers import BYTES, UTF8, read_raw
from rental_kpis.spark.schemas import column_names
from rental_kpis.spark.validation import CORRUPT_RECORD

HEADER = (
    "rental_id,user_id,vehicle_id,rental_start_time,rental_end_time,pickup_location,"
    "dropoff_location,total_amount"
)


def write(folder: Path, text: str, name: str = "part-1.csv") -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return str(folder)


def it_keeps_a_quoted_comma_inside_a_location_name(spark, tmp_path):
    uri = write(
        tmp_path / "locations",
        "location_id,location_name,address,city,state,zip_code,latitude,longitude\n"
        '7,"Airport Lot, Austin #7","1 Main St, Suite 2",Austin,TX,02134,30.2,-97.7\n',
    )
    row = read_raw(spark, "locations", uri).first()
    assert (row["location_name"], row["address"], row["zip_code"]) == (
        "Airport Lot, Austin #7",
        "1 Main St, Suite 2",
        "02134",
    )
    assert row[CORRUPT_RECORD] is None


def it_marks_lines_of_the_wrong_width_as_corrupt(spark, tmp_path):
    uri = write(
        tmp_path / "tx",
        HEADER + "\n"
        "R1,U1,V1,2024-03-01 10:00:00,2024-03-01 12:00:00,1,2,20\n"
        "R2,U1\n"
        "R3,U1,V1,2024-03-01 10:00:00,2024-03-01 12:00:00,1,2,20,extra\n",
    )
    rows = {
        r["rental_id"]: r[CORRUPT_RECORD]
        for r in read_raw(spark, "rental_transactions", uri).collect()
    }
    assert rows == {
        "R1": None,
        "R2": "R2,U1",
        "R3": "R3,U1,V1,2024-03-01 10:00:00,2024-03-01 12:00:00,1,2,20,extra",
    }


def it_matches_columns_by_name_and_ignores_extra_ones(spark, tmp_path):
    uri = write(
        tmp_path / "tx",
        "total_amount,note,rental_id,user_id,vehicle_id,rental_start_time,"
        "rental_end_time,pickup_location,dropoff_location\n"
        "20,hello,R1,U1,V1,2024-03-01 10:00:00,2024-03-01 12:00:00,1,2\n",
    )
    df = read_raw(spark, "rental_transactions", uri)
    assert df.columns == [*HEADER.split(","), CORRUPT_RECORD]
    row = df.first()
    assert (row["rental_id"], row["total_amount"], row[CORRUPT_RECORD]) == ("R1", "20", None)


def it_names_dataset_uri_and_columns_when_a_column_is_missing(spark, tmp_path):
    uri = write(tmp_path / "users", "user_id,first_name,email\nU1,Ana,a@example.com\n")
    with pytest.raises(MissingColumnsError) as caught:
        read_raw(spark, "users", uri)
    message = str(caught.value)
    assert message.startswith(
        f"dataset 'users' at {uri}: header lacks required column(s) "
        "last_name, phone_number, driver_license_number"
    )
    assert "(found: user_id, first_name, email)" in message


def it_names_the_dataset_and_uri_when_no_input_exists(spark, tmp_path):
    with pytest.raises(MissingDatasetError, match=r"dataset 'vehicles': no input files at .*/nope"):
        read_raw(spark, "vehicles", str(tmp_path / "nope"))


# ---------------------------------------------------------------- reading line by line

# A file read line by line (split over tasks) must give exactly the records that reading it
# whole (multiLine) gives; ``line_reads.line_readable`` says which files may be read so.
# These tests hold the two readers to the same rows on files built byte by byte, every file
# scanned (``all``) and split every few bytes, so that each split boundary is exercised.

LOCATIONS = "locations"
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "raw"
LOCATION_HEADER = ",".join(column_names(LOCATIONS)).encode()


def rows(df) -> list[tuple]:
    return sorted((tuple(r) for r in df.collect()), key=repr)


def both_ways(spark, uri: str, split_bytes: int = 16, dataset: str = LOCATIONS) -> None:
    """``read_raw`` gives the same rows whole and line by line (files split every
    ``split_bytes``), in both encodings."""
    for text in (BYTES, UTF8):
        with split_files(spark, NONE, None):
            whole = rows(read_raw(spark, dataset, uri, text))
        with split_files(spark, ALL, split_bytes):
            lined = rows(read_raw(spark, dataset, uri, text))
        assert lined == whole, text


def write_files(folder: Path, bodies: list[bytes], header: bytes = LOCATION_HEADER + b"\n"):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, body in enumerate(bodies):
        path = folder / f"part-{i:03d}.csv"
        path.write_bytes(header + body)
        paths.append(str(path))
    return paths


def scanned(spark, paths: list[str], split_bytes: int | None = 16) -> dict[str, str]:
    """``line_readable`` of ``paths``, every file scanned."""
    heads = {p: Path(p).read_bytes().split(b"\n", 1)[0] + b"\n" for p in paths}
    with split_files(spark, ALL, split_bytes):
        return line_readable(spark, heads)


# What the two readers do differently, each in a file of its own: none may be read by line.
LF_TRAPS = {
    "a quoted line feed": b'1,"a\nb",3\n',
    "a literal quote, then a quoted field": b'1,a"b,"c\nd",3\n',
    "an unclosed quote": b'1,2,3\n4,"ab,6\n7,8,9\n',
    "a line of spaces": b"1,2,3\n \n4,5,6\n",
    "a line of a tab": b"1,2,3\n\t\n",
    "a line of a NUL byte": b"1,2,3\n\x00\n",
    "a malformed record ending in a form feed": b"1,2,3\n4,5\x0c\n",
    "a NUL byte ending a quoted field": b'1,"a","dl\x00"\n2,3,4\n',
    "a NUL byte first": b"\x00a,2,3\n",
    "a line ending in CR": b"1,2,3\r\n",
    "text after a closing quote and a space": b'"x,y",\t#"\n"a" #"\n',
}
CRLF_TRAPS = {
    "a lone LF": b"1,2,3\n4,5,6\r\n",
    "a lone CR at the end": b"1,2,3\r\n4,5,6\r",
    "a lone CR inside": b"1,2\r3,4\r\n",
    "CR CR LF": b"1,2,3\r\n4,5,6\r\r\n",
    "a quoted CR LF": b'1,"a\r\nb",3\r\n',
    "a line of spaces": b"1,2,3\r\n \r\n",
    "a malformed record ending in a form feed": b"1,2\x0c\r\n",
}
# Records each reader reads alike: read line by line.
LF_SAFE = {
    "plain lines": b"1,2,3\n4,5,6\n",
    "no final line feed": b'1,"a""b",3\n4,5,6',
    "an empty line": b"1,2,3\n\n4,5,6\n",
    "every field quoted": b'"1","Harbor Point, Denver","x"\n"2","",""""\n',
    "quoted commas among plain fields": b'7,"Airport Lot, Austin #7",Austin,TX,02134\n',
    "a CR inside a line": b"1,2\r3,4\n",
    "a CR inside quotes": b'1,"a\rb",3\n',
    "spaces around fields": b"  1,2,3  \n",
    "invalid UTF-8 before a quote": b'\xe9,"a",\xff\n"\xe9"\n',
    "a malformed record": b"1,2\n1,2,3,4,5,6,7,8,9\n",
}
CRLF_SAFE = {
    "plain lines": b"1,2,3\r\n4,5,6\r\n",
    "no final line ending": b"1,2,3\r\n4,5,6",
    "an empty line": b"1,2,3\r\n\r\n4,5,6\r\n",
    "every field quoted": b'"1","a, b",""\r\n',
}


@pytest.mark.parametrize(
    ("ending", "traps", "safe"), [("\n", LF_TRAPS, LF_SAFE), ("\r\n", CRLF_TRAPS, CRLF_SAFE)]
)
def it_reads_by_line_only_the_files_both_readers_read_alike(spark, tmp_path, ending, traps, safe):
    header = LOCATION_HEADER + ending.encode()
    cases = {**traps, **safe}
    paths = write_files(tmp_path / LOCATIONS, list(cases.values()), header)
    lined = scanned(spark, paths)
    assert {name for name, path in zip(cases, paths, strict=True) if path in lined} == set(safe)
    assert set(lined.values()) == {ending}
    both_ways(spark, str(tmp_path / LOCATIONS))


def it_reads_a_file_of_the_usual_shape_by_line_split_over_tasks(spark, tmp_path):
    """Every field quoted, some with commas: line-readable, and the same rows both ways,
    the file split every 100 bytes (or read as one split, tiny files aside, by default)."""
    body = b"".join(
        b'"%d","Harbor Point, Denver #%d","%d Main St","Denver","CO","0%d","39.7","-104.9"\n'
        % (i, i, i, 1000 + i)
        for i in range(300)
    )
    paths = write_files(tmp_path / LOCATIONS, [body])
    assert scanned(spark, paths, split_bytes=100) == {paths[0]: "\n"}
    both_ways(spark, str(tmp_path / LOCATIONS), split_bytes=1000)


def it_tells_files_apart_by_path_when_size_and_time_are_shared(spark, tmp_path):
    """Two files of one size and modification time, names that need escaping in a URI: each
    judged on its own lines."""
    folder = tmp_path / "a b%20c é"
    paths = write_files(folder, [b"1,2,3\n", b" \n,,\n"])
    for path in paths:
        os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    assert scanned(spark, paths) == {paths[0]: "\n"}


def it_scans_only_files_spark_may_split_unless_told(spark, tmp_path):
    """``auto``: no file of at most ``openCostInBytes``; ``none``: no file; compressed files
    never (one task reads them whatever the reader)."""
    paths = write_files(tmp_path / LOCATIONS, [b"1,2,3\n"])
    gz = tmp_path / LOCATIONS / "part-9.csv.gz"
    gz.write_bytes(gzip.compress(LOCATION_HEADER + b"\n1,2,3\n"))
    heads = {p: LOCATION_HEADER + b"\n" for p in [*paths, str(gz)]}
    with split_files(spark, AUTO, None):
        assert line_readable(spark, heads) == {}
        spark.conf.set("spark.sql.files.openCostInBytes", "8")
        try:
            assert line_readable(spark, heads) == {paths[0]: "\n"}
        finally:
            spark.conf.unset("spark.sql.files.openCostInBytes")
    with split_files(spark, NONE, None):
        assert line_readable(spark, heads) == {}
    with split_files(spark, "sometimes", None), pytest.raises(ValueError, match="splitFiles"):
        line_readable(spark, heads)


def it_matches_a_long_line_of_doubled_quotes_without_overflowing(spark, tmp_path):
    """The quote grammar is matched by possessive loops: a field of 200,000 doubled quotes
    is one line like any other (a backtracking loop would overflow the JVM's stack)."""
    paths = write_files(tmp_path / LOCATIONS, [b'1,"' + b'""' * 200_000 + b'",3\n'])
    assert scanned(spark, paths, split_bytes=None) == {paths[0]: "\n"}


# Bytes that lines are made of: RFC 4180's specials, blanks, controls, invalid UTF-8.
PIECES = [b"a", b"1", b",", b'"', b'""', b" ", b"\t", b"\x0c", b"\x00", b"\xe9", b"\xff",
          b"\xc3\xa9", b"\r", b"\n", b"\r\n", b'"x,y"', b'"a" ', b"#"]  # fmt: skip
FIELD = st.one_of(
    st.lists(st.sampled_from([b"a", b"1", b" ", b"\xe9", b"\t", b"\x0c", b"\x00"]), max_size=3),
    st.lists(st.sampled_from([b"a", b",", b'""', b" ", b"\n", b"\r\n", b"\x00"]), max_size=3).map(
        lambda parts: [b'"', *parts, b'"']
    ),
).map(b"".join)
LINE = st.one_of(
    st.lists(FIELD, min_size=1, max_size=8).map(b",".join),
    st.lists(st.sampled_from(PIECES), max_size=6).map(b"".join),
)


@st.composite
def file_bodies(draw, ending: bytes) -> bytes:
    body = ending.join(draw(st.lists(LINE, max_size=5)))
    if draw(st.booleans()):
        body += ending
    return body + draw(st.sampled_from([b"", b"", b"", b"\r", b"\n", b" "]))


@st.composite
def datasets(draw) -> tuple[bytes, list[bytes]]:
    """A header (with a line ending, maybe after a byte order mark) and the bodies of up to 8
    files that start with it."""
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    return bom + LOCATION_HEADER + ending, draw(
        st.lists(file_bodies(ending), min_size=1, max_size=8)
    )


@given(dataset=datasets(), split_bytes=st.sampled_from([5, 16, 64]))
def it_reads_any_file_it_calls_line_readable_as_the_whole_file_reader_does(
    spark, dataset, split_bytes
):
    """Random files, byte by byte: the scan's verdict is the rules' (``rules_say``), and the
    dataset reads to the same rows whole and line by line, in both encodings."""
    header, bodies = dataset
    with tempfile.TemporaryDirectory(prefix="rental_kpis_lines_") as tmp:
        folder = Path(tmp) / LOCATIONS
        paths = write_files(folder, bodies, header)
        lined = scanned(spark, paths, split_bytes)
        for path, body in zip(paths, bodies, strict=True):
            assert (path in lined) == rules_say(header + body), body
        both_ways(spark, str(folder), split_bytes)


def rules_say(data: bytes) -> bool:
    """Rules 2 to 6 of ``line_reads`` over a whole file, in plain Python (the scan's spec)."""
    first = data.split(b"\n", 1)[0] + b"\n"
    crlf = first.endswith(b"\r\n")
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    if crlf:
        if data.endswith(b"\r") or b"\r" in first[:-2]:
            return False
        open_end = not data.endswith(b"\n")
        if sum(not line.endswith(b"\r") for line in lines) != open_end:
            return False
        bodies = [line.removesuffix(b"\r") for line in lines]
        if any(b"\r" in body for body in bodies):
            return False
    else:
        if b"\r" in first or any(line.endswith(b"\r") for line in lines):
            return False
        bodies = lines
    quoted = re.compile(rb'(?:[^",]*|"(?:[^"]|"")*")(?:,(?:[^",]*|"(?:[^"]|"")*"))*')
    return not any(
        (b'"' in body and not quoted.fullmatch(body))
        or (body and re.fullmatch(rb"[\x00-\x20]+", body))
        or body.endswith(b"\x0c")
        or b"\x00" in body
        for body in bodies
    )


def it_reads_a_file_with_a_byte_order_mark_by_line(spark, tmp_path):
    """The line reader drops the mark from the first line (the header): every byte is still
    accounted for."""
    header = b"\xef\xbb\xbf" + LOCATION_HEADER + b"\n"
    paths = write_files(tmp_path / LOCATIONS, [b"1,2,3\n"], header)
    assert scanned(spark, paths) == {paths[0]: "\n"}
    both_ways(spark, str(tmp_path / LOCATIONS))


@pytest.mark.parametrize("dataset", DATASETS)
def it_reads_the_sample_by_line_as_it_reads_it_whole(spark, dataset):
    """The committed sample: every file line-readable, and the same rows both ways."""
    uri = str(SAMPLE / dataset)
    paths = [str(p) for p in sorted((SAMPLE / dataset).iterdir())]
    assert set(scanned(spark, paths, split_bytes=None)) == set(paths)
    both_ways(spark, uri, split_bytes=1 << 20, dataset=dataset)


def it_reads_a_dataset_partly_by_line(spark, tmp_path):
    """One file line-readable, one not (a quoted line feed): each read its way, one frame."""
    paths = write_files(tmp_path / LOCATIONS, [b'1,"a\nb",3\n', b"4,5,6\n7,8,9\n"])
    assert scanned(spark, paths) == {paths[1]: "\n"}
    both_ways(spark, str(tmp_path / LOCATIONS))


NUL_BEFORE_CLOSING_QUOTE = {
    "LF": (b"\n", b'"1","a","x","y","z","w","3","30.2\x00"\n"2","b","x","y","z","w","3","3"\n'),
    "CR LF": (
        b"\r\n",
        b'"1","a","x","y","z","w","3","30.2\x00"\r\n"2","b","x","y","z","w","3","3"\r\n',
    ),
    "CR LF, last line": (
        b"\r\n",
        b'"2","b","x","y","z","w","3","3"\r\n"1","a","x","y","z","w","3","30.2\x00"',
    ),
}


@pytest.mark.parametrize("text", [BYTES, UTF8])
@pytest.mark.parametrize("case", NUL_BEFORE_CLOSING_QUOTE)
def it_keeps_a_nul_byte_before_a_closing_quote_when_it_reads_a_file_whole(
    spark, tmp_path, case, text
):
    """The whole-file reader keeps the byte (the record is then suspect), whatever the line
    ending: with Spark's default ``charToEscapeQuoteEscaping`` it dropped it in CR LF files."""
    ending, body = NUL_BEFORE_CLOSING_QUOTE[case]
    write_files(tmp_path / LOCATIONS, [body], LOCATION_HEADER + ending)
    with split_files(spark, NONE, None):
        got = rows(read_raw(spark, LOCATIONS, str(tmp_path / LOCATIONS), text))
    assert [row[7] for row in got if row[0] == "1"] == ["30.2\x00"]
