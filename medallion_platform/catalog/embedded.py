"""The embedded catalog: a JSON registry beside the lake, and SQL over it through DuckDB.

Unity Catalog plays this part on Databricks; locally every table written by the platform is
registered here under `<catalog>.<zone>.<table>`, and `medallion sql` queries it by that name.
"""

import json
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import asdict

import pyarrow as pa

from medallion_platform.catalog.access import table_access
from medallion_platform.catalog.base import Catalog, CatalogEntry, TableEntry
from medallion_platform.settings import Settings

__all__ = ["EmbeddedCatalog"]

_LOCK = threading.Lock()


class EmbeddedCatalog(Catalog):
    """Registry file `<data_dir>/_catalog/catalog.json`; atomic replace on every change."""

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.path = settings.catalog_path

    def entries(self) -> dict[str, CatalogEntry]:
        if not self.path.exists():
            return {}
        raw = json.loads(self.path.read_text(encoding="utf-8"))
        return {name: CatalogEntry(**entry) for name, entry in raw.items()}

    def register(
        self,
        zone: str,
        table: str,
        *,
        schema: pa.Schema,
        entry: TableEntry,
        columns: Sequence[str] | None = None,
    ) -> CatalogEntry:
        """Adds or replaces the entry of `zone.table`, with its mask and filter functions (`catalog/access.py`)."""
        pii = list(entry.pii)
        schema_name = f"{self.settings.catalog_name}.{zone}"
        access = table_access(table, entry.access, schema) if entry.access is not None else None
        registered = CatalogEntry(
            catalog=self.settings.catalog_name,
            zone=zone,
            table=table,
            location=self.settings.table_uri(zone, table),
            description=entry.description,
            owner=entry.owner,
            columns=[
                {
                    "name": f.name,
                    "type": str(f.type),
                    "pii": f.name in pii,
                    "description": entry.column_descriptions.get(f.name, ""),
                }
                for f in schema
            ],
            pii=pii,
            partition_by=list(entry.partition_by),
            masks={c: f"{schema_name}.{f}" for c, f in access.masks.items()} if access else {},
            row_filter=(
                {"function": f"{schema_name}.{access.row_filter[0]}", "columns": list(access.row_filter[1])}
                if access and access.row_filter
                else None
            ),
            functions=[
                {
                    "name": f"{schema_name}.{f.name}",
                    "params": [list(p) for p in f.params],
                    "returns": f.returns,
                    "body": f.body,
                }
                for f in (access.functions if access else ())
            ],
        )
        with _LOCK:
            raw = json.loads(self.path.read_text(encoding="utf-8")) if self.path.exists() else {}
            listed = json.loads(json.dumps(asdict(registered)))  # as the file holds it (lists, not tuples)
            if raw.get(registered.full_name) == listed:  # most writes register the entry the file holds
                return registered
            raw[registered.full_name] = listed
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(dict(sorted(raw.items())), out, indent=2)
            os.replace(tmp, self.path)
        return registered
