"""Landing bytes to records, with no I/O and no database: unpacking (gzip, byte order marks), UTF-8
checks, JSON lines split into numbered lines, CSV parsed into raw rows.

Both raw parsers use it: the embedded one (`ingestion/parsers.py`, DuckDB on the driver) and the
Spark one (`zones/raw_spark_parse.py`, on the executors), so what counts as a line, a blank line, a
broken record or an unreadable object is decided in one place. It imports only the standard library
and pyarrow's arrays and compute functions (no file systems), so it runs wherever Spark runs Python.
"""

import csv
import gzip
import io
import json
import zlib

import pyarrow as pa
import pyarrow.compute as pc

from medallion_platform.contracts import Contract
from medallion_platform.errors import UnreadableObject

__all__ = [
    "BAD_TEXT",
    "BOM",
    "NOT_TEXT",
    "PARSED_FIELDS",
    "UnreadableObject",
    "lines",
    "parse_csv",
    "parsed_schema",
    "unpack",
]

BOM = b"\xef\xbb\xbf"

# Columns a parser adds after the contract's own (text) columns.
PARSED_FIELDS = [
    pa.field("_raw_record", pa.string()),
    pa.field("_parse_error", pa.string()),
    pa.field("_extra_fields", pa.string()),
    pa.field("_source_line", pa.int64()),
]


def parsed_schema(contract: Contract) -> pa.Schema:
    return pa.schema([pa.field(c, pa.string()) for c in contract.column_names] + PARSED_FIELDS)


NOT_TEXT = "not UTF-8 text"
"""`_parse_error` of a record whose bytes are not UTF-8."""
BAD_TEXT = "__bad_text"
"""Column of the lines table: the line was not UTF-8 (its bytes were replaced)."""


def _as_utf8(data: bytes) -> pa.Array | None:
    """`data` as a one-value Arrow string array without a copy, or None when it is not valid UTF-8."""
    kind, width = (pa.string(), pa.int32()) if len(data) < 2**31 else (pa.large_string(), pa.int64())
    offsets = pa.array([0, len(data)], width).buffers()[1]
    array = pa.Array.from_buffers(kind, 1, [None, offsets, pa.py_buffer(data)])
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:
        return None
    return array


def _bad_lines(data: bytes) -> set[int]:
    """1-based numbers of the lines of `data` that are not UTF-8; raises `UnreadableObject` when no
    non-blank line is (a binary object, or text in another encoding throughout)."""
    bad, text = set(), 0
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            line.decode("utf-8")
            text += 1
        except UnicodeDecodeError:
            bad.add(number)
    if bad and not text:
        raise UnreadableObject("undecodable", f"none of its {len(bad)} lines is UTF-8 text")
    return bad


def lines(data: bytes) -> pa.Table:
    """Non-blank lines of `data` (UTF-8) with their 1-based line numbers (CRLF tolerated); lines that
    are not UTF-8 are marked in BAD_TEXT (only present when there are such lines)."""
    text = _as_utf8(data)
    bad: set[int] = set()
    if text is None:
        bad = _bad_lines(data)
        text = pa.array([data.decode("utf-8", errors="replace")], pa.large_string() if len(data) >= 2**31 else None)
    parts = pc.split_pattern(text, "\n").flatten()
    numbers = pc.cumulative_sum(pa.nulls(len(parts), pa.int64()).fill_null(1))
    if data.endswith(b"\n"):  # the empty "line" after the last newline
        parts, numbers = parts.slice(0, len(parts) - 1), numbers.slice(0, len(numbers) - 1)
    if b"\r" in data:
        parts = pc.utf8_rtrim(parts, "\r")
    table = pa.table({"line": parts, "line_no": numbers})
    if bad:
        table = table.append_column(BAD_TEXT, pc.is_in(numbers, pa.array(sorted(bad), pa.int64())))
    if len(parts) and not bad and pc.all(pc.starts_with(parts, "{")).as_py():
        return table  # JSON objects, one per line: no line is blank (the common case, without a copy)
    return table.filter(pc.invert(pc.equal(pc.utf8_trim_whitespace(parts), "")))


def parse_csv(data: bytes, contract: Contract) -> pa.Table:
    """CSV with a header → raw rows. Handles a UTF-8 BOM, CRLF, quoted commas and newlines."""
    try:
        text, bad = data.decode("utf-8-sig"), set()
    except UnicodeDecodeError:
        text, bad = data.decode("utf-8-sig", errors="replace"), _bad_lines(data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    names = contract.column_names
    out: dict[str, list] = {n: [] for n in [*names, "_raw_record", "_parse_error", "_extra_fields", "_source_line"]}
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return parsed_schema(contract).empty_table()
    index = {h: i for i, h in enumerate(header)}
    extra = [h for h in header if h not in names]
    extra_text = ",".join(extra) or None
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. an unterminated quote: the rest of the file is one broken record
            _broken(out, names, text.splitlines()[start - 1 :], f"unparsable CSV: {exc}", start)
            break
        line = start
        start = reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue  # a blank line is not a record
        if bad and any(n in bad for n in range(line, start)):
            _broken(out, names, [_to_csv(row)], NOT_TEXT, line)
            continue
        if len(row) != len(header):
            _broken(out, names, [_to_csv(row)], f"expected {len(header)} fields, found {len(row)}", line)
            continue
        for n in names:
            out[n].append(row[index[n]] if n in index else None)
        out["_raw_record"].append(json.dumps(dict(zip(header, row, strict=True))) if extra else None)
        out["_parse_error"].append(None)
        out["_extra_fields"].append(extra_text)
        out["_source_line"].append(line)
    return pa.table(out, schema=parsed_schema(contract))


def _broken(out: dict, names: list[str], raw: list[str], error: str, line: int) -> None:
    for n in names:
        out[n].append(None)
    out["_raw_record"].append("\n".join(raw))
    out["_parse_error"].append(error)
    out["_extra_fields"].append(None)
    out["_source_line"].append(line)


def _to_csv(row: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(row)
    return buffer.getvalue()


def unpack(data: bytes, compression: str) -> bytes:
    """An object's bytes as text bytes: gunzipped when it is gzip (`compression` "gzip", or "auto" and
    the gzip magic number), without a UTF-8 BOM.

    Raises `UnreadableObject` when it does not decompress or is UTF-16 text.
    """
    if compression == "gzip" or (compression == "auto" and data[:2] == b"\x1f\x8b"):
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as exc:  # truncated, bad magic or header, bad CRC
            raise UnreadableObject("corrupt_gzip", f"{type(exc).__name__}: {exc}") from exc
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableObject("undecodable", "UTF-16 text (its byte order mark); landing objects must be UTF-8")
    return data.removeprefix(BOM)
