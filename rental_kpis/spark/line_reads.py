"""Which raw CSV files may be read line by line, split over many tasks: a pre-scan.

Spark's CSV reader never splits a file in ``multiLine`` mode: one task parses each file. Read
line by line, a file is split at any byte and its parts are parsed side by side, but a
record whose quoted field holds a line break is cut in two. ``line_readable`` proves, for
each file, that reading it line by line gives exactly the records that reading it whole
gives: the same records, every field and every ``_corrupt_record`` text the same, in either
encoding the reader uses (readers.CSV_OPTIONS). A file it cannot prove that of is read whole.

A file is line-readable when all of these hold (docs/validation.md, "Reading CSV"):

1. it is not compressed (a compressed file is never split anyway);
2. its line ending is one throughout: LF (its first line holds no CR, and no line ends in
   CR, which a malformed record's text would keep read line by line and lose read whole),
   read line by line at LF only, so that a CR elsewhere is a character as it is read whole;
   or CR LF (its first line ends in CR LF, every LF follows a CR and every CR precedes an
   LF), read line by line at CR, LF and CR LF. The whole-file reader takes its line ending
   from the first line;
3. every line that holds a quote is a list of fields, each either free of quotes or quoted
   whole with its inner quotes doubled: then no record spans two lines, and each line
   parses alone as it parses within the file;
4. no line is blank without being empty (only characters up to U+0020): the line reader drops
   it, the whole-file reader reads it as a record of one field;
5. no line ends in a form feed, which the line reader strips from a malformed record's text;
6. no line holds a NUL byte: the line reader drops one that ends a quoted field before a line
   break, where the whole-file reader keeps it (and the record is then suspect);
7. the scan accounts for every byte: the lines' lengths plus one line feed each make the
   file's size, or one more when its last line has no line feed (less the three bytes of a
   UTF-8 byte order mark, which the line reader drops from the first line, the header).

The proof is one Spark job over the files, split as Spark splits them: their lines read as
text, byte tests on each line, the quote grammar (a regular expression) only on a line with
quotes that is not simply every field quoted, and a few sums per file. The sums are grouped
by each file's size and modification time, two numbers per line, when no two files share
them, else by its path.

Which files are scanned is a Spark setting, ``SPLIT_FILES_CONF``: ``auto`` (the default)
scans the uncompressed files that Spark may split, those larger than
``spark.sql.files.openCostInBytes``; ``all`` scans every uncompressed file (tests use it, so
that small files take the line reader); ``none`` scans none, and every file is read whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

SPLIT_FILES_CONF = "rental_kpis.readers.splitFiles"
AUTO, ALL, NONE = "auto", "all", "none"

LF, CRLF = "\n", "\r\n"
BOM = b"\xef\xbb\xbf"  # UTF-8's byte order mark
# The CSV reader's options that read a file of each line ending line by line (rule 2).
LINE_OPTIONS: dict[str, dict[str, str]] = {
    LF: {"multiLine": "false", "lineSep": LF},
    CRLF: {"multiLine": "false"},
}

# A line of fields, each unquoted without a quote, or quoted whole with its inner quotes
# doubled, each followed by a comma or the end (a CR before the end is the CR LF ending).
# Possessive quantifiers: Java's matcher repeats them without recursion, so a line of any
# length is matched in linear time and never overflows the stack; the lookahead makes the
# unquoted alternative fail, instead of matching nothing, where a quoted field starts.
_FIELD = r'(?:[^",]*+|"(?:[^"]++|"")*+")(?=,|\r?\z)'
QUOTED_FIELDS = rf"^{_FIELD}(?:,{_FIELD})*+\r?\z"
_BLANK = r"^[\x00-\x20]+\z"  # what Java's String.trim leaves empty

# SQL of the byte tests on a line ``value``; chr() spares escapes and folds to a constant.
_CR_END = "endswith(value, chr(13))"
_BODY_SIZE = f"(octet_length(value) - IF({_CR_END}, 1, 0))"  # bytes before a final CR


def _bytes(start: int, end: str) -> str:
    """SQL: the bytes of ``value`` from ``start`` (1-based) to before byte ``end`` (SQL), as a
    string whose UTF-8 is not checked (the byte-wise functions need none)."""
    return f"cast(substring(cast(value AS binary), {start}, {end} - {start}) AS string)"


# Every field quoted, none holding a quote (the usual export): the quotes that open and close
# the line, and between them quotes only in '","' between two fields. A byte search, where
# the grammar's regular expression costs several times more.
_QUOTED_WHOLE = (
    f"startswith(value, chr(34)) AND {_BODY_SIZE} >= 2 "
    "AND (endswith(value, chr(34)) OR endswith(value, concat(chr(34), chr(13)))) "
    f"AND NOT contains(replace({_bytes(2, _BODY_SIZE)}, concat(chr(34), ',', chr(34)), ''), "
    "chr(34))"
)
_FORM_FEED_END = "endswith(value, chr(12)) OR endswith(value, concat(chr(12), chr(13)))"


def _line_tests(crlf: bool) -> list[Column]:
    """Per line of text ``value`` (split at LF only) of a file whose line ending is CR LF
    (``crlf``) or LF, as 0/1 columns to sum per file: whether it ends in CR (``cr_end``),
    whether it holds a CR before its last byte, in a CR LF file (``cr_inner``), whether it
    breaks rule 3, 4, 5 or 6 (``bad``).

    Only byte-wise functions look at a line (``contains``, ``startswith``, ``endswith``,
    ``replace``, lengths and substrings of bytes): a line need not be UTF-8, and the
    character-wise ones (``instr``, ``length``, ``substring`` of a string) walk an invalid
    byte as if it led a character and can step over a quote or a CR. A regular expression
    decodes the line, which turns an invalid byte into U+FFFD and leaves every quote, comma
    and CR where it was.
    """
    value = F.col("value")
    quotes_ok = (
        F.when(~value.contains('"'), True)
        .when(F.expr(_QUOTED_WHOLE), True)
        .otherwise(value.rlike(QUOTED_FIELDS))
    )
    blank = F.when((value < "!") & (value != "") & (value != "\r"), value.rlike(_BLANK)).otherwise(
        False
    )
    bad = ~quotes_ok | blank | F.expr(_FORM_FEED_END) | F.expr("contains(value, chr(0))")
    cr_inner = (
        f"CASE WHEN {_CR_END} THEN contains({_bytes(1, 'octet_length(value)')}, chr(13)) "
        "ELSE contains(value, chr(13)) END"
    )
    tests = {
        "cr_end": F.expr(_CR_END),
        "cr_inner": F.expr(cr_inner) if crlf else F.lit(False),
        "bad": bad,
    }
    return [F.when(test, 1).otherwise(0).alias(name) for name, test in tests.items()]


@dataclass(frozen=True)
class _Candidate:
    """A file to scan: its path (and qualified, as Hadoop names it), size, modification time
    (ms), last byte, line ending, and whether it starts with a UTF-8 byte order mark."""

    path: str
    qualified: str
    size: int
    modified: int
    last: int
    ending: str
    bom: bool

    def readable(self, lines: int, length: int, cr_end: int, cr_inner: int, bad: int) -> bool:
        """Rules 2 to 7, from the scan's sums over this file's lines."""
        open_end = int(self.last != ord(LF))  # the last line has no line feed
        if bad or length + lines != self.size + open_end - len(BOM) * self.bom:
            return False
        if self.ending == LF:
            return cr_end == 0
        # Every line ends in CR LF but the last, which may have no LF (and then ends in no CR).
        return not cr_inner and self.last != ord("\r") and lines - cr_end == open_end


def line_ending(head: bytes) -> str | None:
    """``LF`` or ``CRLF`` from a file's first line (its bytes up to its LF), or None when that
    line has no LF or a CR elsewhere than right before it."""
    if not head.endswith(b"\n"):
        return None
    if b"\r" not in head:
        return LF
    if head.endswith(b"\r\n") and b"\r" not in head[:-2]:
        return CRLF
    return None


def _candidates(spark: SparkSession, heads: dict[str, bytes], every: bool) -> list[_Candidate]:
    """The files of ``heads`` (path → first line's bytes) that the scan looks at: each
    uncompressed, with a line ending, larger than ``openCostInBytes`` unless ``every``."""
    context: Any = spark.sparkContext  # py4j's view of the JVM: untyped
    jvm, conf = context._jvm, context._jsc.hadoopConfiguration()
    codecs = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf)
    # A file of at most this many bytes is one split whatever Spark's other settings say.
    session: Any = spark  # the JVM session's SQL settings, parsed as Spark parses them
    smallest = (
        0 if every else int(session._jsparkSession.sessionState().conf().filesOpenCostInBytes())
    )
    found = []
    for path, head in heads.items():
        ending = line_ending(head)
        hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
        if ending is None or codecs.getCodec(hadoop_path) is not None:
            continue
        fs = hadoop_path.getFileSystem(conf)
        status = fs.getFileStatus(hadoop_path)
        size = int(status.getLen())
        if size <= smallest:
            continue
        stream = fs.open(hadoop_path)
        try:
            stream.seek(size - 1)
            last = int(stream.read())
        finally:
            stream.close()
        qualified = str(fs.makeQualified(hadoop_path).toString())
        modified = int(status.getModificationTime())
        found.append(
            _Candidate(path, qualified, size, modified, last, ending, head.startswith(BOM))
        )
    return found


def split_files_mode(spark: SparkSession) -> str:
    """The value of ``SPLIT_FILES_CONF`` (``auto`` when unset); any other is a ValueError."""
    mode = str(spark.conf.get(SPLIT_FILES_CONF, AUTO)).strip().lower()
    if mode not in (AUTO, ALL, NONE):
        raise ValueError(f"{SPLIT_FILES_CONF} must be {AUTO}, {ALL} or {NONE}, not {mode!r}")
    return mode


def _scan(spark: SparkSession, paths: list[str], ending: str, by_path: bool) -> DataFrame:
    """Per line of ``paths`` (all of line ending ``ending``): its file, by path (``by_path``)
    or by size and modification time, its length in bytes and its tests (``_line_tests``)."""
    lines = spark.read.option("lineSep", LF).text(paths)
    meta = F.col("_metadata")
    file = (
        [meta.file_path.alias("path")]
        if by_path
        else [meta.file_size.alias("size"), F.unix_millis(meta.file_modification_time).alias("ms")]
    )
    return lines.select(
        *file, F.octet_length("value").alias("length"), *_line_tests(crlf=ending == CRLF)
    )


def line_readable(spark: SparkSession, heads: dict[str, bytes]) -> dict[str, str]:
    """The files of ``heads`` that may be read line by line, split anywhere, with their ending.

    Args:
        spark: the session; ``SPLIT_FILES_CONF`` says which files are scanned.
        heads: each data file's path (as given to the CSV reader) and the bytes of its first
            line, LF included (``fs.read_head``).

    Returns:
        Path → line ending (``LF`` or ``CRLF``), for the paths among ``heads`` for which the
        CSV reader with ``LINE_OPTIONS[ending]`` gives exactly the records it gives with
        ``multiLine`` (readers.CSV_OPTIONS, either encoding): all the rules of this module's
        docstring hold. Empty when no file is scanned or none can be proved so; a file left
        out is read whole, never wrongly.
    """
    mode = split_files_mode(spark)
    if mode == NONE or not heads:
        return {}
    candidates = _candidates(spark, heads, every=mode == ALL)
    if not candidates:
        return {}
    by_path = len({(c.size, c.modified) for c in candidates}) < len(candidates)
    scans = [
        _scan(spark, [c.path for c in candidates if c.ending == ending], ending, by_path)
        for ending in (LF, CRLF)
        if any(c.ending == ending for c in candidates)
    ]
    lines = scans[0] if len(scans) == 1 else scans[0].union(scans[1])
    key, sums = lines.columns[: 1 if by_path else 2], ("length", "cr_end", "cr_inner", "bad")
    rows = (
        lines.groupBy(*key)
        .agg(F.count(F.lit(1)).alias("lines"), *(F.sum(name).alias(name) for name in sums))
        .collect()
    )
    files = {_file_key(c, by_path): c for c in candidates}
    context: Any = spark.sparkContext
    jvm = context._jvm
    readable = {}
    for row in rows:
        if by_path:  # the scan names a file by its escaped URI; Hadoop's Path unescapes it
            found = files.get(str(jvm.org.apache.hadoop.fs.Path(jvm.java.net.URI(row[0]))))
        else:
            found = files.get((int(row[0]), int(row[1])))
        if found is not None and found.readable(
            int(row["lines"]), *(int(row[name]) for name in sums)
        ):
            readable[found.path] = found.ending
    return readable


def _file_key(candidate: _Candidate, by_path: bool) -> object:
    """How the scan's sums name ``candidate``: its qualified path, or size and time."""
    return candidate.qualified if by_path else (candidate.size, candidate.modified)
