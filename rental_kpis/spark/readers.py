"""Reading raw CSV at the edge of the validation step (SPEC §1).

Each file's header is read first (its first line, not the file), so that a missing dataset, a
stray file, a file that is not UTF-8, a duplicated or a missing column fails before any Spark
job with one sentence naming dataset, URI, file and column, and so that columns are matched
by name even when a file orders them differently.

The records themselves are read as RFC 4180 says (docs/validation.md, "Reading CSV"):
``"`` quotes, ``""`` is one quote inside a quoted field, a quoted field may span lines, a
backslash is an ordinary character. Bytes are read as ISO-8859-1, which maps every byte to
one character and back, so that each record can be checked for invalid UTF-8 and NUL bytes
and decoded here; reading as UTF-8 would turn a Latin-1 ``é`` into U+FFFD without a trace.

A file is read whole (``multiLine``: one task parses it, as a quoted field may span lines),
or line by line, split over many tasks, where ``line_reads.line_readable`` proves that both
give it the same records.
"""

from __future__ import annotations

import csv
import functools
import re

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from rental_kpis.errors import InputError, MissingColumnsError, MissingDatasetError
from rental_kpis.layout import RAW_FILES_RULE, is_raw_data_file
from rental_kpis.spark import fs
from rental_kpis.spark.line_reads import LINE_OPTIONS, line_readable
from rental_kpis.spark.schemas import column_names, missing_columns
from rental_kpis.spark.validation import CORRUPT_RECORD, SUSPECT

# Every byte is one character in ISO-8859-1: the reader sees bytes, ``decode_utf8`` decodes.
_BYTES = "ISO-8859-1"
_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# SQL strings made from their UTF-8 bytes (no escape, so no parser setting changes them):
# the NUL byte, and U+FFFD, which the UTF-8 reader puts where a byte is invalid.
_NUL = "decode(X'00', 'UTF-8')"
_REPLACEMENT = "decode(X'EFBFBD', 'UTF-8')"
# The CSV reader's options, a file read whole: RFC 4180 (escape is the quote itself, not
# Spark's backslash). Read line by line, ``line_reads.LINE_OPTIONS`` are added.
CSV_OPTIONS: dict[str, str] = {
    "header": "true",
    "enforceSchema": "true",
    "mode": "PERMISSIVE",
    "columnNameOfCorruptRecord": CORRUPT_RECORD,
    "quote": '"',
    "escape": '"',
    # Spark's default here is NUL, which made the reader drop a NUL byte before a closing
    # quote in a CR LF file (the record then read as valid); the quote itself escapes nothing
    # more than RFC 4180's doubled quote already does.
    "charToEscapeQuoteEscaping": '"',
    "multiLine": "true",
    "encoding": _BYTES,
}
# Spark tokenises only the selected columns when this is on, and then cannot tell a record of
# the wrong width; multiLine reads turn it off too (SPARK-46862), but a record's width must
# never depend on which columns a query happens to use.
_COLUMN_PRUNING = "spark.sql.csv.parser.columnPruning.enabled"


def parse_header(line: str) -> list[str]:
    return [name.strip() for name in next(csv.reader([line]), [])]


def decode_header(dataset: str, uri: str, path: str, head: bytes) -> str:
    """The first line of a file as text; a file that is not UTF-8 is an error naming it."""

    def fail(why: str) -> InputError:
        return InputError(
            f"dataset {dataset!r} at {uri}: file {path} is not UTF-8 ({why}); save it as UTF-8"
        )

    if head.startswith(_UTF16_BOMS):
        raise fail("it starts with a UTF-16 byte order mark")
    if b"\x00" in head:
        raise fail("its first line holds NUL bytes, as UTF-16 text does")
    try:
        text = head.removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError as error:
        raise fail(f"byte {error.start} of its first line is invalid") from None
    return re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]


def data_files(spark: SparkSession, dataset: str, uri: str) -> list[str]:
    """The files of a dataset folder; any entry SPEC §1 does not allow is an error naming it."""
    base = uri.rstrip("/")
    entries = fs.list_folder(spark, uri)
    for name, is_file in entries:
        if not (is_file and is_raw_data_file(name)):
            raise InputError(
                f"dataset {dataset!r} at {uri}: {base}/{name} is not a data file ({RAW_FILES_RULE})"
            )
    if not entries:
        raise MissingDatasetError(dataset, uri)
    return [f"{base}/{name}" for name, _ in entries]


def _head(spark: SparkSession, dataset: str, uri: str, path: str) -> bytes:
    """The first line's bytes; a file that cannot be read (a ``.gz`` that is not gzip) is an
    error naming it, not a Java stack trace."""
    try:
        return fs.read_head(spark, path)
    except OSError as error:
        raise InputError(
            f"dataset {dataset!r} at {uri}: file {path} cannot be read: {error}"
        ) from None


def read_header(spark: SparkSession, dataset: str, uri: str) -> tuple[list[str], list[str]]:
    """The data files under ``uri`` and their common header; errors name what is wrong where."""
    files, header, _ = _read_heads(spark, dataset, uri)
    return files, header


def _read_heads(
    spark: SparkSession, dataset: str, uri: str
) -> tuple[list[str], list[str], dict[str, bytes]]:
    """``read_header``, plus each file's first line as bytes (``fs.read_head``)."""
    files = data_files(spark, dataset, uri)
    heads = {path: _head(spark, dataset, uri, path) for path in files}
    headers = {
        path: parse_header(decode_header(dataset, uri, path, head)) for path, head in heads.items()
    }
    for path, header in headers.items():
        twice = sorted({name for name in header if header.count(name) > 1})
        if twice:
            raise InputError(
                f"dataset {dataset!r} at {uri}: file {path} has column {twice[0]!r} twice; "
                "column names must be unique"
            )
    first = headers[files[0]]
    for path, header in headers.items():
        if header != first:
            raise InputError(
                f"dataset {dataset!r} at {uri}: file {path} has header {','.join(header)} "
                f"but {files[0]} has {','.join(first)}; files of one dataset must agree"
            )
    missing = missing_columns(dataset, first)
    if missing:
        raise MissingColumnsError(dataset, uri, missing, first)
    return files, first, heads


def decode_utf8(col: Column) -> Column:
    """Text read as ISO-8859-1 (one character per byte) decoded as UTF-8 (U+FFFD if invalid)."""
    return F.decode(F.encode(col, _BYTES), "UTF-8")


def is_bad_text(col: Column) -> Column:
    """The bytes behind ``col`` (read as ISO-8859-1) are not UTF-8, or hold a NUL byte.

    Decoding replaces each invalid sequence by U+FFFD; only when one appears is the
    re-encoded text compared with the bytes, because a genuine U+FFFD is valid UTF-8.
    """
    decoded = decode_utf8(col)
    invalid = F.contains(decoded, F.lit("\ufffd")) & (
        F.encode(decoded, "UTF-8") != F.encode(col, _BYTES)
    )
    return F.contains(col, F.lit("\x00")) | invalid


def as_csv_record(fields: list[str]) -> Column:
    """The fields of a record joined back into one CSV line, quoted where RFC 4180 needs it.

    ``fields`` are SQL expressions, and the record is one SQL expression: built with the
    Column API it took a score of calls into the JVM per field, and the driver made thousands
    of them before a step's first job (benchmarks/README.md).
    """

    def field(sql: str) -> str:
        text = f"coalesce({sql}, '')"
        quoted = f"""concat('"', replace({text}, '"', '""'), '"')"""
        return f"""CASE WHEN {text} RLIKE '[",\\r\\n]' THEN {quoted} ELSE {text} END"""

    return F.expr(f"concat_ws(',', {', '.join(field(sql) for sql in fields)})")


def _sql_name(name: str) -> str:
    """A column of the reader (``_c<i>``, ``_corrupt_record``) in SQL text."""
    if "`" in name:
        raise ValueError(f"not a reader column: {name!r}")
    return f"`{name}`"


def _decoded_sql(name: str) -> str:
    """``decode_utf8`` of a reader column, in SQL text."""
    return f"decode(encode({_sql_name(name)}, '{_BYTES}'), 'UTF-8')"


BYTES = "bytes"  # read_raw's exact reading: every byte checked (any input)
UTF8 = "utf-8"  # read_raw's fast reading: Spark decodes UTF-8 (exact when no row is suspect)


def read_raw(spark: SparkSession, dataset: str, uri: str, text: str = BYTES) -> DataFrame:
    """All records of a raw dataset as strings, SPEC columns in SPEC order, plus the text of
    any record that is not valid (``_corrupt_record``): a record of the wrong width for its
    header, or one whose bytes are not UTF-8 or hold a NUL byte.

    ``text="bytes"`` (the default) reads bytes as ISO-8859-1 and decodes every field here,
    so it tells invalid UTF-8 from a genuine U+FFFD. ``text="utf-8"`` lets the CSV reader
    decode (no per-field work: the validation step's first try); an invalid byte then
    becomes U+FFFD, which a genuine U+FFFD also is, so every record holding U+FFFD is marked
    in the extra boolean column ``_suspect``, and a dataset with any such record must be read
    again with ``text="bytes"``. Without one, both readings give the same rows.

    Each file is read whole or line by line (``_read_records``), with the same records either
    way; ``line_reads.SPLIT_FILES_CONF`` says which files may be read line by line.
    """
    if text not in (BYTES, UTF8):
        raise ValueError(f"text must be {BYTES!r} or {UTF8!r}, not {text!r}")
    files, header, heads = _read_heads(spark, dataset, uri)
    spark.conf.set(_COLUMN_PRUNING, "false")
    positions = [f"_c{i}" for i in range(len(header))]  # extra columns' names play no part
    schema = T.StructType(
        [T.StructField(name, T.StringType(), True) for name in positions]
        + [T.StructField(CORRUPT_RECORD, T.StringType(), True)]
    )
    df = _read_records(spark, schema, files, heads, _BYTES if text == BYTES else "UTF-8")
    every = [F.col(name) for name in positions]
    corrupt = F.col(CORRUPT_RECORD)
    names = column_names(dataset)
    sources = {n: F.col(positions[header.index(n)]) for n in names}
    if text == BYTES:
        bad_text = is_bad_text(F.concat_ws(",", *every))
        return df.select(
            *(decode_utf8(source).alias(n) for n, source in sources.items()),
            F.when(corrupt.isNotNull(), decode_utf8(corrupt))
            .when(bad_text, as_csv_record([_decoded_sql(name) for name in positions]))
            .alias(CORRUPT_RECORD),
        )
    return df.select(
        *(source.alias(n) for n, source in sources.items()),
        F.when(corrupt.isNotNull(), corrupt)
        .when(_any_holds(positions, _NUL), as_csv_record([_sql_name(n) for n in positions]))
        .alias(CORRUPT_RECORD),
        _any_holds([*positions, CORRUPT_RECORD], _REPLACEMENT).alias(SUSPECT),
    )


def _read_records(
    spark: SparkSession,
    schema: T.StructType,
    files: list[str],
    heads: dict[str, bytes],
    encoding: str,
) -> DataFrame:
    """The records of ``files`` as the CSV reader gives them (``schema``: positions, then the
    corrupt record). A file that ``line_reads.line_readable`` proves line-readable is read
    line by line, split over many tasks; any other is read whole (``multiLine``), one task
    each. Both ways give such a file the same records; only the speed differs."""
    lined = line_readable(spark, heads)
    options = {**CSV_OPTIONS, "encoding": encoding}
    groups = [(options, [path for path in files if path not in lined])] + [
        ({**options, **line_options}, [path for path in files if lined.get(path) == ending])
        for ending, line_options in LINE_OPTIONS.items()
    ]
    reads = [
        spark.read.schema(schema).options(**opts).csv(paths) for opts, paths in groups if paths
    ]
    return functools.reduce(DataFrame.union, reads)


def _any_holds(names: list[str], literal: str) -> Column:
    """True when any of the reader's columns ``names`` contains the SQL string ``literal``
    (a byte search each, nothing copied); one SQL expression, as in ``as_csv_record``."""
    found = (f"coalesce(contains({_sql_name(name)}, {literal}), false)" for name in names)
    return F.expr(" OR ".join(found))
