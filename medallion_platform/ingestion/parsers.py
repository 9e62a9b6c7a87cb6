"""Parses landing files into source-faithful raw rows: every value kept as text, nothing dropped.

A record that cannot be parsed (broken JSON, a CSV row with the wrong number of fields) still
becomes a raw row: its text goes to `_raw_record` and the error to `_parse_error`, so trusted can
quarantine it with a reason. Fields the contract does not know are listed in `_extra_fields`
and the whole record is kept in `_raw_record`.

Text must be UTF-8: a line with other bytes is a broken record (`not UTF-8 text`, kept with the bytes
replaced), and an object none of whose lines is UTF-8 is not a text object at all (`UnreadableObject`,
which raw records as a rejected object).
"""

from collections.abc import Sequence

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from medallion_platform.contracts import Contract
from medallion_platform.ingestion.landing_text import BAD_TEXT, NOT_TEXT, PARSED_FIELDS, lines, parse_csv
from medallion_platform.lake.sql import ident, literal

__all__ = ["PARSED_FIELDS", "ParsedInserter", "parse_csv"]

_CHUNK = "__chunk"
"""The Arrow table of waiting lines (or CSV rows), registered in DuckDB while a chunk is inserted."""


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
        parsed = lines(data) if self.contract.source.format == "jsonl" else parse_csv(data, self.contract)
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
