"""What Unity Catalog stores about an external Delta table, read from its Delta log with delta-rs: the columns
as `ColumnInfo` JSON (Databricks `type_name` enum, `type_text` catalog string, `type_json` Spark field JSON,
`position`, `nullable`, `partition_index`) and the table properties Databricks reports for a Delta table.

Unity Catalog stores these when a table is created or synced (`MSCK REPAIR TABLE … SYNC METADATA`), not at every
read, so a column another engine added stays invisible to the catalog until the next sync.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from medallion_devtools.standins.databricks.errors import JsonObject

__all__ = ["DeltaSnapshot", "NotADeltaTable", "column_infos", "read_delta_snapshot", "type_text"]

# Delta (Spark) primitive type → (Databricks `type_name`, SQL catalog string used in `type_text`).
_PRIMITIVES = {
    "string": ("STRING", "string"),
    "long": ("LONG", "bigint"),
    "integer": ("INT", "int"),
    "short": ("SHORT", "smallint"),
    "byte": ("BYTE", "tinyint"),
    "float": ("FLOAT", "float"),
    "double": ("DOUBLE", "double"),
    "boolean": ("BOOLEAN", "boolean"),
    "binary": ("BINARY", "binary"),
    "date": ("DATE", "date"),
    "timestamp": ("TIMESTAMP", "timestamp"),
    "timestamp_ntz": ("TIMESTAMP_NTZ", "timestamp_ntz"),
    "variant": ("VARIANT", "variant"),
}
_COMPLEX = {"array": "ARRAY", "map": "MAP", "struct": "STRUCT"}


class NotADeltaTable(Exception):
    """The location holds no Delta transaction log."""


@dataclass(frozen=True)
class DeltaSnapshot:
    """The columns and properties of a Delta table's latest version."""

    columns: list[JsonObject]
    properties: dict[str, str]


def type_text(delta_type: str | Mapping[str, Any]) -> str:
    """The SQL catalog string of a Delta type (`bigint`, `decimal(10,2)`, `array<string>`, `struct<a:int>` …)."""
    if isinstance(delta_type, str):
        if delta_type.startswith("decimal"):
            return delta_type.replace(" ", "")
        return _PRIMITIVES[delta_type][1]
    kind = delta_type["type"]
    if kind == "array":
        return f"array<{type_text(delta_type['elementType'])}>"
    if kind == "map":
        return f"map<{type_text(delta_type['keyType'])},{type_text(delta_type['valueType'])}>"
    return "struct<" + ",".join(f"{f['name']}:{type_text(f['type'])}" for f in delta_type["fields"]) + ">"


def _type_name(delta_type: str | Mapping[str, Any]) -> str:
    if isinstance(delta_type, str):
        return "DECIMAL" if delta_type.startswith("decimal") else _PRIMITIVES[delta_type][0]
    return _COMPLEX[delta_type["type"]]


def column_infos(schema: Mapping[str, Any], partition_columns: list[str]) -> list[JsonObject]:
    """`ColumnInfo` JSON for each top-level field of a Delta schema (its JSON form), in order."""
    columns = []
    for position, field in enumerate(schema["fields"]):
        delta_type = field["type"]
        precision, scale = 0, 0
        if isinstance(delta_type, str) and delta_type.startswith("decimal"):
            precision, scale = (int(n) for n in delta_type[delta_type.index("(") + 1 : -1].split(","))
        column: JsonObject = {
            "name": field["name"],
            "type_text": type_text(delta_type),
            "type_json": json.dumps(field, separators=(",", ":")),
            "type_name": _type_name(delta_type),
            "type_precision": precision,
            "type_scale": scale,
            "position": position,
            "nullable": bool(field.get("nullable", True)),
        }
        comment = (field.get("metadata") or {}).get("comment")
        if comment:
            column["comment"] = comment
        if field["name"] in partition_columns:
            column["partition_index"] = partition_columns.index(field["name"])
        columns.append(column)
    return columns


def read_delta_snapshot(location: str, storage_options: Mapping[str, str]) -> DeltaSnapshot:
    """The latest version of the Delta table at `location` (raises `NotADeltaTable` when there is none)."""
    options = dict(storage_options) if location.startswith(("s3://", "s3a://")) else None
    try:
        table = DeltaTable(location, storage_options=options)
    except TableNotFoundError as exc:
        raise NotADeltaTable(str(exc)) from None
    metadata, protocol = table.metadata(), table.protocol()
    # No `delta.lastCommitTimestamp`: `history()` does not return on the S3 emulator (delta-rs 1.6.6).
    properties = {
        **{k: str(v) for k, v in metadata.configuration.items()},
        "delta.minReaderVersion": str(protocol.min_reader_version),
        "delta.minWriterVersion": str(protocol.min_writer_version),
        "delta.lastUpdateVersion": str(table.version()),
    }
    schema = json.loads(table.schema().to_json())
    return DeltaSnapshot(column_infos(schema, list(metadata.partition_columns)), properties)
