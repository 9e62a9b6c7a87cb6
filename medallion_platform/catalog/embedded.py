"""The embedded catalog: a JSON registry beside the lake, and SQL over it through DuckDB.

Unity Catalog plays this part on Databricks; locally every table written by the platform is
registered here under `<catalog>.<zone>.<table>`, and `medallion sql` queries it by that name.
"""

import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, field

import duckdb
import pyarrow as pa

from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.settings import Settings

__all__ = ["CatalogEntry", "EmbeddedCatalog"]

_LOCK = threading.Lock()


@dataclass(frozen=True)
class CatalogEntry:
    """One registered table."""

    catalog: str
    zone: str
    table: str
    location: str
    description: str
    owner: str
    columns: list[dict] = field(default_factory=list)
    """[{name, type, pii}] in table order."""
    pii: list[str] = field(default_factory=list)
    partition_by: list[str] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.catalog}.{self.zone}.{self.table}"


class EmbeddedCatalog:
    """Registry file `<data_dir>/_catalog/catalog.json`; atomic replace on every change."""

    def __init__(self, settings: Settings):
        self.settings = settings
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
        description: str,
        owner: str,
        pii: list[str] | None = None,
        partition_by: list[str] | None = None,
    ) -> CatalogEntry:
        """Adds or replaces the entry of `zone.table`."""
        pii = list(pii or [])
        entry = CatalogEntry(
            catalog=self.settings.catalog_name,
            zone=zone,
            table=table,
            location=self.settings.table_uri(zone, table),
            description=description,
            owner=owner,
            columns=[{"name": f.name, "type": str(f.type), "pii": f.name in pii} for f in schema],
            pii=pii,
            partition_by=list(partition_by or []),
        )
        with _LOCK:
            entries = self.entries()
            entries[entry.full_name] = entry
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({k: asdict(v) for k, v in sorted(entries.items())}, out, indent=2)
            os.replace(tmp, self.path)
        return entry

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection where every registered table is a view `<catalog>.<zone>.<table>`."""
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        catalog = self.settings.catalog_name
        con.execute(f"ATTACH ':memory:' AS \"{catalog}\"")
        for entry in self.entries().values():
            dataset = DeltaTableIO(entry.location, storage_options=self.settings.storage_options).duckdb_dataset()
            if dataset is None:
                continue
            source = f"__{entry.zone}__{entry.table}".replace("/", "_")
            con.register(source, dataset)
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{catalog}"."{entry.zone}"')
            con.execute(f'CREATE VIEW "{catalog}"."{entry.zone}"."{entry.table}" AS SELECT * FROM "{source}"')
        return con

    def sql(self, query: str) -> pa.Table:
        """Runs `query` against the catalog's tables."""
        con = self.connect()
        try:
            return con.sql(query).to_arrow_table()
        finally:
            con.close()
