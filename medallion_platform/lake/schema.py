"""Arrow schemas derived from contracts: the raw (text) schema and the trusted (typed) schema."""

import pyarrow as pa

from medallion_platform.contracts import Column, Contract
from medallion_platform.contracts.model import HISTORY_COLUMNS, TOMBSTONE_COLUMN

__all__ = [
    "LINEAGE_FIELDS",
    "QUARANTINE_SCHEMA",
    "arrow_type",
    "conform",
    "conform_stream",
    "history_schema",
    "quarantine_schema",
    "raw_schema",
    "trusted_schema",
]

UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")

# Ingestion metadata carried on every raw row.
RAW_METADATA = [
    pa.field("_raw_record", pa.string()),  # the source line/row, kept when it is malformed or has extra fields
    pa.field("_parse_error", pa.string()),  # why the record could not be parsed, else null
    pa.field("_extra_fields", pa.string()),  # comma-separated names of fields the contract does not know
    pa.field("_source_file", pa.string(), nullable=False),
    pa.field("_source_line", pa.int64(), nullable=False),  # line (JSON lines) or record number (CSV)
    pa.field("_ingested_at", UTC_TIMESTAMP, nullable=False),
    pa.field("_batch_id", pa.string(), nullable=False),
    pa.field("_batch_seq", pa.int64(), nullable=False),
    pa.field("_landing_date", pa.string(), nullable=False),  # YYYY-MM-DD from the landing path
]

# Lineage carried from raw into trusted, so every trusted row points at its source.
LINEAGE_FIELDS = [
    pa.field("_source_file", pa.string()),
    pa.field("_source_line", pa.int64()),
    pa.field("_ingested_at", UTC_TIMESTAMP),
    pa.field("_batch_seq", pa.int64()),
    pa.field("_landing_date", pa.string()),
]

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("_rule", pa.string()),  # the first rule the row failed: malformed_record, required, type, min, ...
        pa.field("_column", pa.string()),  # the column it failed on (null for record-level rules)
        pa.field("_reason", pa.string()),  # a sentence for people
        pa.field("_raw_value", pa.string()),  # the value as it came
        pa.field("_raw_record", pa.string()),  # the whole record as it came (JSON of the raw columns if parsed)
        *LINEAGE_FIELDS,
    ]
)


def arrow_type(column: Column) -> pa.DataType:
    """The Arrow type a contract column has in trusted."""
    if column.decimal:
        return pa.decimal128(*column.decimal)
    return {
        "string": pa.string(),
        "integer": pa.int64(),
        "double": pa.float64(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
        "timestamp": UTC_TIMESTAMP,
    }[column.type]


def raw_schema(contract: Contract) -> pa.Schema:
    """Raw keeps every source value as text, plus ingestion metadata."""
    return pa.schema([pa.field(c.name, pa.string()) for c in contract.columns] + RAW_METADATA)


def trusted_schema(contract: Contract) -> pa.Schema:
    """Typed contract columns, the partition column if any, a change source's tombstone flag, then lineage."""
    fields = [pa.field(c.name, arrow_type(c), nullable=not c.required) for c in contract.columns]
    if contract.partition is not None:
        fields.append(pa.field(contract.partition.column, pa.date32()))
    if contract.changes is not None:
        fields.append(pa.field(TOMBSTONE_COLUMN, pa.bool_(), nullable=False))
    return pa.schema(fields + LINEAGE_FIELDS)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Selects and casts `table` to `schema` (engines differ in integer widths and time zones)."""
    arrays = []
    for field in schema:
        column = table.column(field.name)
        if column.type != field.type:
            column = column.cast(field.type)
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=pa.schema([f.with_nullable(True) for f in schema]))


def quarantine_schema(contract: Contract) -> pa.Schema:
    """The raw text columns of a failed row, the rule it failed, and its source reference."""
    return pa.schema([pa.field(c.name, pa.string()) for c in contract.columns] + list(QUARANTINE_SCHEMA))


def conform_stream(reader: pa.RecordBatchReader, schema: pa.Schema) -> pa.RecordBatchReader:
    """`conform` applied batch by batch, so the stream stays a stream."""
    target = pa.schema([f.with_nullable(True) for f in schema])

    def batches():
        for batch in reader:
            yield conform(pa.Table.from_batches([batch]), schema).combine_chunks().to_batches()[0]

    return pa.RecordBatchReader.from_batches(target, batches())


def history_schema(contract: Contract) -> pa.Schema:
    """A `<dataset>_history` table: the typed contract columns of each version, when it held
    (`valid_from`, `valid_to`: null while current), `is_current`, `is_deleted`, then lineage."""
    valid_from, valid_to, is_current, is_deleted = HISTORY_COLUMNS
    fields = [pa.field(c.name, arrow_type(c)) for c in contract.columns]
    fields += [
        pa.field(valid_from, UTC_TIMESTAMP, nullable=False),
        pa.field(valid_to, UTC_TIMESTAMP),
        pa.field(is_current, pa.bool_(), nullable=False),
        pa.field(is_deleted, pa.bool_(), nullable=False),
    ]
    return pa.schema(fields + LINEAGE_FIELDS)
