"""Parses landing files into source-faithful raw rows: every value kept as text, nothing dropped.

A record that cannot be parsed (broken JSON, a CSV row with the wrong number of fields) still
becomes a raw row: its text goes to `_raw_record` and the error to `_parse_error`, so trusted can
quarantine it with a reason. Fields the contract does not know are listed in `_extra_fields`
and the whole record is kept in `_raw_record`.

Text must be UTF-8: a line with other bytes is a broken record (`not UTF-8 text`, kept with the bytes
replaced), and an object none of whose lines is UTF-8 is not a text object at all (`UnreadableObject`,
which raw records as a rejected object).
"""

import csv
import io
import json
from collections.abc import Sequence

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from medallion_platform.contracts import Contract
from medallion_platform.ingestion.landing import UnreadableObject
from medallion_platform.lake.sql import ident, literal

__all__ = ["PARSED_FIELDS", "ParsedInserter", "parse_csv"]

# Columns a parser adds after the contract's own (text) columns.
PARSED_FIELDS = [
    pa.field("_raw_record", pa.string()),
    pa.field("_parse_error", pa.string()),
    pa.field("_extra_fields", pa.string()),
    pa.field("_source_line", pa.int64()),
]


def _parsed_schema(contract: Contract) -> pa.Schema:
    return pa.schema([pa.field(c, pa.string()) for c in contract.column_names] + PARSED_FIELDS)


NOT_TEXT = "not UTF-8 text"
"""`_parse_error` of a record whose bytes are not UTF-8."""
BAD_TEXT = "__bad_text"
"""Column of the lines table: the line was not UTF-8 (its bytes were replaced)."""
_CHUNK = "__chunk"
"""The Arrow table of waiting lines (or CSV rows), registered in DuckDB while a chunk is inserted."""


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


def _lines(data: bytes) -> pa.Table:
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
    lines = pa.table({"line": parts, "line_no": numbers})
    if bad:
        lines = lines.append_column(BAD_TEXT, pc.is_in(numbers, pa.array(sorted(bad), pa.int64())))
    if len(parts) and not bad and pc.all(pc.starts_with(parts, "{")).as_py():
        return lines  # JSON objects, one per line: no line is blank (the common case, without a copy)
    return lines.filter(pc.invert(pc.equal(pc.utf8_trim_whitespace(parts), "")))


def _jsonl_sql(contract: Contract, *, lines: str, carried: Sequence[str] = ()) -> str:
    """The SELECT that parses JSON lines of table `lines` (columns `line`, `line_no`, BAD_TEXT and
    `carried`) into raw rows: the contract's columns as text, the parse columns, then `carried` as is.

    Valid JSON whose first character is `{` is an object: a string test instead of json_type's parse.
    """
    names = contract.column_names
    paths = ", ".join(literal(f"$.{ident(n)}") for n in names)
    known = ", ".join(literal(n) for n in names)
    columns = ",\n".join(f"CASE WHEN ok THEN v[{i + 1}] END AS {ident(n)}" for i, n in enumerate(names))
    passed = "".join(f", {ident(c)}" for c in carried)
    return f"""
        WITH parsed AS (
            SELECT line, line_no, {BAD_TEXT}{passed},
                   (NOT {BAD_TEXT} AND starts_with(ltrim(line, ' \t\r\n'), '{{') AND json_valid(line)) AS ok
            FROM {ident(lines)}
        ), extracted AS (
            SELECT *,
                   CASE WHEN ok THEN json_extract_string(line, [{paths}]) END AS v,
                   CASE WHEN ok THEN list_filter(json_keys(line), lambda k: k NOT IN ({known})) END AS extra
            FROM parsed
        )
        SELECT {columns},
               CASE WHEN NOT ok OR len(extra) > 0 THEN line END AS _raw_record,
               CASE WHEN NOT ok THEN
                    CASE WHEN {BAD_TEXT} THEN '{NOT_TEXT}'
                         WHEN json_valid(line) THEN 'not a JSON object' ELSE 'malformed JSON' END
               END AS _parse_error,
               CASE WHEN len(extra) > 0 THEN array_to_string(extra, ',') END AS _extra_fields,
               line_no AS _source_line{passed}
        FROM extracted
    """


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
        return _parsed_schema(contract).empty_table()
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
    return pa.table(out, schema=_parsed_schema(contract))


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


class ParsedInserter:
    """Parses landing objects straight into DuckDB table `table`, in bounded chunks.

    JSON lines from many objects are gathered (with their source columns) until `chunk_rows`
    lines are waiting, then parsed by one INSERT: one statement per chunk, not per object, and
    no Arrow buffer beyond the configured batch size. CSV objects are parsed and inserted each.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        contract: Contract,
        constants: dict[str, str],
        *,
        chunk_rows: int,
    ):
        self.con, self.table, self.contract, self.chunk_rows = con, table, contract, chunk_rows
        self.constants = ", ".join(f"{sql} AS {ident(name)}" for name, sql in constants.items())
        self._waiting: list[pa.Table] = []
        self._waiting_rows = 0
        self.max_chunk_rows = 0

    def add(self, data: bytes, source: dict[str, str]) -> int:
        """Queues one object; `source` holds per-object columns (file, landing date). Returns its rows."""
        return self.add_prepared(self.prepare(data, source))

    def prepare(self, data: bytes, source: dict[str, str]) -> pa.Table:
        """The object's records ready to queue: its lines (JSON) or parsed rows (CSV) with the source
        columns. Touches no shared state, so objects can be prepared on other threads meanwhile."""
        parsed = _lines(data) if self.contract.source.format == "jsonl" else parse_csv(data, self.contract)
        for name, value in source.items():
            parsed = parsed.append_column(name, pa.repeat(pa.scalar(value, pa.string()), parsed.num_rows))
        return parsed

    def add_prepared(self, prepared: pa.Table) -> int:
        """Queues what `prepare` returned; parses and inserts a chunk whenever `chunk_rows` lines wait."""
        if self.contract.source.format != "jsonl":
            self._insert(prepared, f"SELECT *, {self.constants} FROM {ident(_CHUNK)}")
            return prepared.num_rows
        for offset in range(0, prepared.num_rows, self.chunk_rows):
            part = prepared.slice(offset, self.chunk_rows)
            if self._waiting_rows + part.num_rows > self.chunk_rows:
                self.flush()
            self._waiting.append(part)
            self._waiting_rows += part.num_rows
        return prepared.num_rows

    def flush(self) -> None:
        if not self._waiting:
            return
        chunk = pa.concat_tables(self._waiting, promote_options="default")  # BAD_TEXT only where lines were bad
        self._waiting, self._waiting_rows = [], 0
        if BAD_TEXT in chunk.column_names:
            chunk = chunk.set_column(
                chunk.schema.get_field_index(BAD_TEXT), BAD_TEXT, pc.fill_null(chunk[BAD_TEXT], False)
            )
        else:
            chunk = chunk.append_column(BAD_TEXT, pa.repeat(pa.scalar(False), chunk.num_rows))
        carried = [n for n in chunk.column_names if n not in ("line", "line_no", BAD_TEXT)]
        sql = _jsonl_sql(self.contract, lines=_CHUNK, carried=carried)
        self._insert(chunk, f"SELECT *, {self.constants} FROM ({sql})")

    def _insert(self, chunk: pa.Table, select: str) -> None:
        self.max_chunk_rows = max(self.max_chunk_rows, chunk.num_rows)
        self.con.register(_CHUNK, chunk)
        try:
            self.con.execute(f"INSERT INTO {ident(self.table)} BY NAME {select}").fetchall()
        finally:
            self.con.unregister(_CHUNK)
