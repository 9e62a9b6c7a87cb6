"""Raw staging: new landing objects parsed into one DuckDB table, the raw batch, ready to commit to raw
and to promote from.

Objects are read and split into lines on a helper thread while DuckDB parses the ones before; an
object that cannot be read or decoded (a gzip that does not decompress, bytes that are not text) is
returned as a rejection and left out, and the other objects go through.
"""

import datetime as dt
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from medallion_platform.contracts import Contract
from medallion_platform.ingestion.landing import LandingFile, RejectedObject, UnreadableObject, read_landing_file
from medallion_platform.ingestion.parsers import ParsedInserter
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.lake.schema import raw_schema
from medallion_platform.lake.sql import duckdb_type, ident, idents, literal

__all__ = ["PREFETCH_BYTES", "RawBatch", "stage_batch"]

PREFETCH_BYTES = 64 * 1024 * 1024
"""Landing bytes read and split into lines ahead of the parser: about one parse chunk, so the next
chunk is ready when DuckDB finishes the current one (fewer bytes left DuckDB waiting for the lines)."""


@dataclass
class RawBatch:
    """New landing files parsed into a DuckDB table, ready to commit to raw (and to promote from).

    Held in the process's embedded DuckDB connection, which spills to disk past its memory limit.
    """

    contract: Contract
    seq: int
    batch_id: str
    ingested_at: dt.datetime
    files: list[LandingFile]
    table: str
    connection: duckdb.DuckDBPyConnection
    rows_by_file: dict[str, int] = field(default_factory=dict)
    already_ingested: int = 0
    rejected: list[RejectedObject] = field(default_factory=list)
    """Landing objects raw does not take (this run's and earlier ones still in place)."""
    newly_rejected: int = 0
    max_chunk_rows: int = 0
    """Largest chunk of lines parsed at once (bounded by the configured batch size)."""

    @property
    def rows(self) -> int:
        return sum(self.rows_by_file.values())

    def reader(self, batch_rows: int) -> pa.RecordBatchReader:
        """The batch's rows in the raw schema, streamed in record batches of at most `batch_rows`."""
        schema = raw_schema(self.contract)
        source = self.connection.sql(f"SELECT {idents(schema.names)} FROM {ident(self.table)}")
        source = source.to_arrow_reader(batch_rows)
        return pa.RecordBatchReader.from_batches(schema, (b.cast(schema) for b in source))

    def malformed(self) -> int:
        """Rows of the batch that could not be parsed (kept in raw with `_parse_error`)."""
        found = self.connection.execute(f"SELECT count(*) FROM {ident(self.table)} WHERE _parse_error IS NOT NULL")
        return int(found.fetchall()[0][0])

    def drop(self) -> None:
        self.connection.execute(f"DROP TABLE IF EXISTS {ident(self.table)}")


def stage_batch(
    lake: Lakehouse,
    contract: Contract,
    connection: duckdb.DuckDBPyConnection,
    new: list[LandingFile],
    *,
    seq: int,
    ingested_at: dt.datetime,
) -> tuple[RawBatch | None, list[RejectedObject]]:
    """Parses `new` into a DuckDB table as raw batch `seq`: (the batch, or None when no object could be
    read; the objects that could not be read or decoded)."""
    batch = RawBatch(
        contract=contract,
        seq=seq,
        batch_id=f"{contract.name}-{seq:06d}-{uuid.uuid4().hex[:8]}",
        ingested_at=ingested_at,
        files=[],
        table=f"raw_batch_{contract.name}_{uuid.uuid4().hex[:8]}",
        connection=connection,
    )
    columns = ", ".join(f"{ident(f.name)} {duckdb_type(f.type)}" for f in raw_schema(contract))
    connection.execute(f"CREATE TABLE {ident(batch.table)} ({columns})")
    constants = {
        "_ingested_at": f"CAST({literal(ingested_at.isoformat())} AS TIMESTAMPTZ)",
        "_batch_id": literal(batch.batch_id),
        "_batch_seq": literal(seq),
    }
    inserter = ParsedInserter(connection, batch.table, contract, constants, chunk_rows=lake.settings.batch_rows)
    unreadable = _parse_objects(lake, contract, new, inserter, batch)
    if not batch.files:
        batch.drop()
        return None, unreadable
    return batch, unreadable


def _parse_objects(
    lake: Lakehouse, contract: Contract, landed: list[LandingFile], inserter: ParsedInserter, batch: RawBatch
) -> list[RejectedObject]:
    """Parses `landed` into the batch's table (adding each object taken to `batch.files`); returns the
    objects that could not be read or decoded.

    Objects are read and split into lines on a helper thread while DuckDB parses the ones before
    (Arrow releases the GIL); at most PREFETCH_BYTES of landing data (and one object) wait, so memory
    stays bounded.
    """

    def prepare(landing: LandingFile) -> pa.Table:
        data = read_landing_file(lake.settings, contract, landing.key)
        return inserter.prepare(data, {"_source_file": landing.key, "_landing_date": landing.landing_date})

    reading: deque[tuple[LandingFile, Future[pa.Table]]] = deque()
    unreadable: list[RejectedObject] = []
    bytes_in_flight = 0

    def parse_oldest() -> None:
        nonlocal bytes_in_flight
        landing, future = reading.popleft()
        bytes_in_flight -= landing.size
        try:
            prepared = future.result()
        except UnreadableObject as exc:
            unreadable.append(_rejection(landing, exc.reason, exc.detail))
            return
        except (pa.ArrowException, ValueError, MemoryError) as exc:  # what Arrow or the parser could not take
            unreadable.append(_rejection(landing, "unreadable", f"{type(exc).__name__}: {exc}"))
            return
        batch.rows_by_file[landing.key] = inserter.add_prepared(prepared)
        batch.files.append(landing)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="medallion-landing") as pool:
        for landing in landed:
            reading.append((landing, pool.submit(prepare, landing)))
            bytes_in_flight += landing.size
            while len(reading) > 1 and bytes_in_flight > PREFETCH_BYTES:
                parse_oldest()
        while reading:
            parse_oldest()
    inserter.flush()
    batch.max_chunk_rows = inserter.max_chunk_rows
    return unreadable


def _rejection(landing: LandingFile, reason: str, detail: str) -> RejectedObject:
    return RejectedObject(landing.key, reason, detail[:500], landing.fingerprint, landing.landing_date)
