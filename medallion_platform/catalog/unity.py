"""Unity Catalog: every table an EXTERNAL Delta table `<catalog>.<zone>.<table>` at its zone location,
governed from the contracts and the refined modules, through the Databricks APIs (databricks-sdk).

- The catalog and one schema per zone are created if missing (`catalogs`/`schemas` APIs, each schema's
  storage root in its zone), and the zone's grants from settings are applied to the schema
  (`grants.update`) and read back. By default analysts read refined only, engineers trusted and refined,
  and raw is readable only by the platform's own principal, which owns the raw tables.
- Tables are created with SQL (the SDK has no `tables.create`): `CREATE TABLE IF NOT EXISTS … USING DELTA
  LOCATION …` through the SQL Statement Execution API on the configured warehouse; after another engine
  changed the Delta schema, `MSCK REPAIR TABLE … SYNC METADATA`. Then `tables.get` must show an EXTERNAL
  DELTA table at the location with the Delta schema's columns, or registration fails.
- Table and column comments, the owner, and `pii` tags on PII columns (`ALTER TABLE … ALTER COLUMN … SET
  TAGS ('pii' = 'true')`) are applied where `tables.get` shows they differ.
- A table with an access policy (a contract's `access:`) gets its functions (`catalog/access.py`: `CREATE OR
  REPLACE FUNCTION` where `functions.get` differs), column masks (`ALTER COLUMN … SET MASK`) and row filter
  (`SET ROW FILTER … ON (…)`), dropped again when the policy goes; `tables.get` must then show them.
- Maintenance is `OPTIMIZE` and `VACUUM … RETAIN n HOURS` on the warehouse (`maintain`).

Every failure is a `CatalogError` naming the table and the setting to look at.
"""

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from medallion_platform.catalog.access import SqlFunction, TableAccess, table_access
from medallion_platform.catalog.base import Catalog, CatalogEntry, CatalogError, TableEntry
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.lake.maintenance import MaintenanceResult
from medallion_platform.lake.sql import spark_ident as ident
from medallion_platform.lake.sql import spark_literal as literal
from medallion_platform.settings import Settings

__all__ = ["UnityCatalog", "ident", "literal"]

STATEMENT_TIMEOUT_S = 120.0
MIN_VACUUM_RETAIN_HOURS = 168  # Delta's retentionDurationCheck on Databricks (7 days)


class UnityCatalog(Catalog):
    """Unity Catalog through databricks-sdk: the workspace from `DATABRICKS_HOST`/`DATABRICKS_TOKEN` (or a
    cluster's own credentials), DDL on `MEDALLION_DATABRICKS_WAREHOUSE_ID`."""

    def __init__(self, settings: Settings, client: Any | None = None):
        super().__init__(settings)
        self._client = client
        self._schemas_ready: set[str] = set()

    @property
    def client(self) -> Any:
        if self._client is None:
            from databricks.sdk import WorkspaceClient

            self._client = WorkspaceClient()
        return self._client

    def full_name(self, zone: str, table: str) -> str:
        return self.settings.table_name(zone, table)

    # -- statements ------------------------------------------------------------------------
    def execute(self, statement: str, *, subject: str) -> list[list[str | None]]:
        """Runs one statement on the warehouse and returns its result rows (JSON_ARRAY: text; none for DDL);
        a failure names `subject` and the setting."""
        from databricks.sdk.errors import DatabricksError
        from databricks.sdk.service.sql import StatementState

        warehouse = self.settings.databricks_warehouse_id
        if not warehouse:
            raise CatalogError(
                f"registering {subject} in Unity Catalog needs a SQL warehouse: set MEDALLION_DATABRICKS_WAREHOUSE_ID"
            )
        try:
            response = self.client.statement_execution.execute_statement(
                statement=statement, warehouse_id=warehouse, wait_timeout="30s"
            )
            deadline = time.monotonic() + STATEMENT_TIMEOUT_S
            while response.status.state in (StatementState.PENDING, StatementState.RUNNING):
                if time.monotonic() > deadline:
                    raise CatalogError(f"{subject}: statement still {response.status.state.value} after 120 s")
                time.sleep(0.5)
                response = self.client.statement_execution.get_statement(response.statement_id)
        except DatabricksError as exc:
            raise CatalogError(f"{subject}: {exc} (warehouse MEDALLION_DATABRICKS_WAREHOUSE_ID={warehouse})") from None
        if response.status.state != StatementState.SUCCEEDED:
            error = response.status.error
            message = error.message if error is not None else response.status.state.value
            raise CatalogError(f"{subject}: {message} (statement: {statement})")
        result = response.result
        return [list(row) for row in (result.data_array if result is not None and result.data_array else [])]

    def maintain(self, entry: CatalogEntry, *, retention_hours: int) -> MaintenanceResult:
        """`OPTIMIZE` then `VACUUM … RETAIN n HOURS` on the warehouse, as Databricks maintains its tables (Sail,
        the stand-in cluster's engine, cannot parse either: `engine/databricks.py` DIVERGENCES). Databricks
        refuses a retention under 7 days; VACUUM reports no file count (`vacuumed` is 0)."""
        if retention_hours < MIN_VACUUM_RETAIN_HOURS:
            raise CatalogError(
                f"{entry.full_name}: Databricks vacuums with a retention of at least {MIN_VACUUM_RETAIN_HOURS} hours"
                f" (asked: {retention_hours}); use --retention-hours {MIN_VACUUM_RETAIN_HOURS} or more"
            )
        quoted = ident(self.settings.catalog_name, entry.zone, entry.table)
        rows = self.execute(f"OPTIMIZE {quoted}", subject=entry.full_name)
        metrics = json.loads(rows[0][1] or "{}") if rows and len(rows[0]) > 1 else {}
        self.execute(f"VACUUM {quoted} RETAIN {int(retention_hours)} HOURS", subject=entry.full_name)
        return MaintenanceResult(
            entry.location, int(metrics.get("numFilesRemoved", 0)), int(metrics.get("numFilesAdded", 0)), 0
        )

    def _api(self, subject: str, setting: str) -> "_Wrap":
        return _Wrap(subject, setting)

    # -- catalog and schemas ---------------------------------------------------------------
    def ensure_schema(self, zone: str) -> None:
        """The catalog and the zone's schema exist, with the zone's grants applied and read back."""
        if zone in self._schemas_ready:
            return
        from databricks.sdk.errors import NotFound

        catalog, schema = self.settings.catalog_name, f"{self.settings.catalog_name}.{zone}"
        with self._api(catalog, "MEDALLION_CATALOG, and its managed location MEDALLION_CATALOG_STORAGE_ROOT"):
            try:
                self.client.catalogs.get(catalog)
            except NotFound:
                # with its managed location: a metastore without root storage (every new auto-enabled workspace's)
                # refuses a catalog without one
                self.client.catalogs.create(
                    name=catalog,
                    comment="The Medallion lakehouse: raw, trusted, refined.",
                    storage_root=self.settings.catalog_storage_root,
                )
        with self._api(schema, "the zone buckets (MEDALLION_<ZONE>_BUCKET)"):
            try:
                self.client.schemas.get(schema)
            except NotFound:
                # in the catalog's managed location, as `provision` creates it: a managed location of its own would
                # need CREATE MANAGED STORAGE on the zone's external location, which the platform is not granted
                self.client.schemas.create(name=zone, catalog_name=catalog, comment=f"The {zone} zone.")
        self.apply_grants(zone)
        self._schemas_ready.add(zone)

    def apply_grants(self, zone: str) -> None:
        """Grants the zone's privileges from settings on its schema (and USE_CATALOG), then reads them back."""
        from databricks.sdk.service.catalog import PermissionsChange, Privilege

        wanted = self.settings.grants.get(zone, {})
        if not wanted:
            return
        catalog, schema = self.settings.catalog_name, f"{self.settings.catalog_name}.{zone}"
        with self._api(schema, "MEDALLION_GRANTS"):
            # only what is missing: granting needs ownership (or MANAGE), which the platform principal has only on
            # what it created; on an account the Pulumi program has granted all of it already
            granted = self.grants(zone)
            changes = [
                PermissionsChange(principal=p, add=[Privilege(v) for v in sorted(missing)])
                for p, privileges in wanted.items()
                if (missing := set(privileges) - set(granted.get(p, [])))
            ]
            if changes:
                self.client.grants.update("schema", schema, changes=changes)
            found = self.client.grants.get("catalog", catalog)
            using = {
                a.principal for a in found.privilege_assignments or [] if Privilege.USE_CATALOG in (a.privileges or [])
            }
            uses = [PermissionsChange(principal=p, add=[Privilege.USE_CATALOG]) for p in wanted if p not in using]
            if uses:
                self.client.grants.update("catalog", catalog, changes=uses)
            granted = self.grants(zone)
        for principal, privileges in wanted.items():
            missing = set(privileges) - set(granted.get(principal, []))
            if missing:
                raise CatalogError(f"{schema}: {principal} lacks {sorted(missing)} after the grant (MEDALLION_GRANTS)")

    def grants(self, zone: str) -> dict[str, list[str]]:
        """The privileges granted on the zone's schema, by principal."""
        found = self.client.grants.get("schema", f"{self.settings.catalog_name}.{zone}")
        return {
            a.principal: sorted(p.value for p in (a.privileges or []))
            for a in (found.privilege_assignments or [])
            if a.principal
        }

    # -- tables ----------------------------------------------------------------------------
    def register(
        self,
        zone: str,
        table: str,
        *,
        schema: pa.Schema,
        entry: TableEntry,
        columns: Sequence[str] | None = None,
    ) -> CatalogEntry:
        """Creates or syncs the EXTERNAL Delta table, verifies it, and governs it per `entry`."""
        name = self.full_name(zone, table)
        location = self.settings.table_uri(zone, table)
        arrow_schema: pa.Schema | None = None  # read by delta-rs only when the caller did not name the columns
        if columns is None:
            arrow_schema = self._delta_schema(name, location)
            columns = arrow_schema.names
        columns = list(columns)
        self.ensure_schema(zone)
        quoted = ident(self.settings.catalog_name, zone, table)
        with self._api(name, "DATABRICKS_HOST / DATABRICKS_TOKEN"):
            exists = bool(self.client.tables.exists(name).table_exists)
        if not exists:
            self.execute(f"CREATE TABLE IF NOT EXISTS {quoted} USING DELTA LOCATION {literal(location)}", subject=name)
        info = self._table(name)
        if [c.name for c in info.columns or []] != columns:  # the Delta schema changed since it was registered
            self.execute(f"MSCK REPAIR TABLE {quoted} SYNC METADATA", subject=name)
            info = self._table(name)
        self._verify(name, info, location, columns)
        if (info.comment or "") != entry.description:
            self.execute(f"COMMENT ON TABLE {quoted} IS {literal(entry.description)}", subject=name)
        for column in info.columns or []:
            described = entry.column_descriptions.get(column.name or "")
            if described and (column.comment or "") != described:
                alter = f"ALTER TABLE {quoted} ALTER COLUMN {ident(column.name or '')} COMMENT {literal(described)}"
                self.execute(alter, subject=name)
        for column_name in entry.pii:
            # only when the tag differs: once the owner has moved, setting it needs APPLY TAG
            if column_name in columns and self.column_tags(name, column_name).get("pii") != "true":
                tag = f"ALTER TABLE {quoted} ALTER COLUMN {ident(column_name)} SET TAGS ('pii' = 'true')"
                self.execute(tag, subject=f"{name} column {column_name} (tagging needs APPLY TAG or ownership)")
        if info.owner != entry.owner:
            with self._api(name, "the table owner (the contract's or refined module's owner)"):
                self.client.tables.update(name, owner=entry.owner)
        access = None
        if entry.access is not None:  # masks are typed: the Delta schema's, else the written schema's types
            access = table_access(table, entry.access, arrow_schema or schema)
        self._govern(zone, name, info, access)
        return self._entry(zone, self._table(name), entry.partition_by, entry.pii)

    # -- masks and row filters -------------------------------------------------------------
    def _govern(self, zone: str, name: str, info: Any, access: TableAccess | None) -> None:
        """Creates the policy's functions where they differ, sets (or drops) the masks and the row filter, and
        reads them back from `tables.get`."""
        schema = f"{self.settings.catalog_name}.{zone}"
        quoted = ident(*name.split("."))
        for function in access.functions if access else ():
            full = f"{schema}.{function.name}"
            if self._stored_function(full) != function:
                params = ", ".join(f"{ident(p)} {kind}" for p, kind in function.params)
                self.execute(
                    f"CREATE OR REPLACE FUNCTION {ident(*full.split('.'))}({params}) RETURNS {function.returns} "
                    f"RETURN {function.body}",
                    subject=f"{full} (creating functions needs CREATE FUNCTION on {schema})",
                )
        masks, row_filter = _wanted(schema, access)
        for column in info.columns or []:
            current = (column.mask.function_name or "").lower() if column.mask else ""
            wanted = masks.get(column.name or "", "")
            if current != wanted.lower():
                change = f"SET MASK {ident(*wanted.split('.'))}" if wanted else "DROP MASK"
                self.execute(f"ALTER TABLE {quoted} ALTER COLUMN {ident(column.name or '')} {change}", subject=name)
        if _row_filter(info) != row_filter:
            if row_filter is None:
                self.execute(f"ALTER TABLE {quoted} DROP ROW FILTER", subject=name)
            else:
                filter_name, inputs = row_filter
                on = ", ".join(ident(c) for c in inputs)
                self.execute(
                    f"ALTER TABLE {quoted} SET ROW FILTER {ident(*filter_name.split('.'))} ON ({on})", subject=name
                )
        if not masks and row_filter is None and access is None:
            return
        after = self._table(name)
        shown = {c.name: (c.mask.function_name or "").lower() for c in after.columns or [] if c.mask}
        if shown != {c: f.lower() for c, f in masks.items()} or _row_filter(after) != row_filter:
            raise CatalogError(
                f"{name}: Unity Catalog shows masks {shown} and row filter {_row_filter(after)} after setting masks "
                f"{masks} and row filter {row_filter} (the contract's access:)"
            )

    def _stored_function(self, full_name: str) -> SqlFunction | None:
        """A function as Unity Catalog holds it (None when there is none)."""
        from databricks.sdk.errors import DatabricksError, NotFound

        try:
            found = self.client.functions.get(full_name)
        except NotFound:
            return None
        except DatabricksError as exc:
            raise CatalogError(f"{full_name}: {exc} (check DATABRICKS_HOST / DATABRICKS_TOKEN)") from None
        params = (
            tuple((p.name or "", (p.type_text or "").upper()) for p in (found.input_params.parameters or []))
            if found.input_params
            else ()
        )
        return SqlFunction(
            found.name or "", params, (found.full_data_type or "").upper(), found.routine_definition or ""
        )

    def column_tags(self, table: str, column: str) -> dict[str, str | None]:
        """A column's Unity Catalog tags, read back through the entity tag assignments API."""
        path = f"/api/2.1/unity-catalog/entity-tag-assignments/columns/{table}.{column}/tags"
        with self._api(f"{table} column {column}", "DATABRICKS_HOST / DATABRICKS_TOKEN"):
            found = self.client.api_client.do("GET", path)
        return {t["tag_key"]: t.get("tag_value") for t in (found or {}).get("tag_assignments") or []}

    def _table(self, name: str) -> Any:
        with self._api(name, "DATABRICKS_HOST / DATABRICKS_TOKEN"):
            return self.client.tables.get(name)

    def _delta_schema(self, name: str, location: str) -> pa.Schema:
        """The Arrow schema of the Delta table at `location` (delta-rs), or a `CatalogError` naming `name`."""
        delta = Lakehouse(self.settings).at(location).table()
        if delta is None:
            raise CatalogError(f"{name}: no Delta table at {location} to register")
        return pa.schema(delta.schema().to_arrow())

    @staticmethod
    def _verify(name: str, info: Any, location: str, columns: Sequence[str]) -> None:
        kind = getattr(info.table_type, "value", info.table_type)
        fmt = getattr(info.data_source_format, "value", info.data_source_format)
        problems = []
        if kind != "EXTERNAL":
            problems.append(f"type {kind}, not EXTERNAL")
        if fmt != "DELTA":
            problems.append(f"format {fmt}, not DELTA")
        if (info.storage_location or "").rstrip("/") != location.rstrip("/"):
            problems.append(f"location {info.storage_location}, not {location}")
        if [c.name for c in info.columns or []] != list(columns):
            problems.append(f"columns {[c.name for c in info.columns or []]}, not the Delta schema's {list(columns)}")
        if problems:
            raise CatalogError(f"{name} is registered wrongly in Unity Catalog: {'; '.join(problems)}")

    def _entry(self, zone: str, info: Any, partition_by: Sequence[str] = (), pii: Sequence[str] = ()) -> CatalogEntry:
        masks = {c.name: c.mask.function_name for c in info.columns or [] if c.mask and c.mask.function_name}
        row_filter = _row_filter(info)
        named = sorted({*masks.values(), *([row_filter[0]] if row_filter else [])})
        functions = []
        for full in named:
            stored = self._stored_function(full)
            if stored is not None:
                functions.append(
                    {
                        "name": full,
                        "params": [list(p) for p in stored.params],
                        "returns": stored.returns,
                        "body": stored.body,
                    }
                )
        return CatalogEntry(
            catalog=self.settings.catalog_name,
            zone=zone,
            table=info.name,
            location=info.storage_location or "",
            description=info.comment or "",
            owner=info.owner or "",
            columns=[
                {"name": c.name, "type": c.type_text, "pii": c.name in pii, "description": c.comment or ""}
                for c in info.columns or []
            ],
            pii=list(pii),
            partition_by=list(partition_by),
            masks=masks,
            row_filter={"function": row_filter[0], "columns": list(row_filter[1])} if row_filter else None,
            functions=functions,
        )

    def entries(self) -> dict[str, CatalogEntry]:
        """Every table of the catalog's zone schemas, as Unity Catalog lists them (locations resolve there)."""
        from databricks.sdk.errors import NotFound

        out: dict[str, CatalogEntry] = {}
        for zone in self.settings.zone_roots:
            try:
                tables: Iterator[Any] = iter(
                    self.client.tables.list(catalog_name=self.settings.catalog_name, schema_name=zone)
                )
                for info in tables:
                    entry = self._entry(zone, info)
                    out[entry.full_name] = entry
            except NotFound:
                continue
        return out


def _wanted(schema: str, access: TableAccess | None) -> tuple[dict[str, str], tuple[str, tuple[str, ...]] | None]:
    """The masks (column -> full function name) and the row filter (full name, columns) a policy asks for."""
    if access is None:
        return {}, None
    masks = {c: f"{schema}.{f}" for c, f in access.masks.items()}
    row_filter = (f"{schema}.{access.row_filter[0]}".lower(), access.row_filter[1]) if access.row_filter else None
    return masks, row_filter


def _row_filter(info: Any) -> tuple[str, tuple[str, ...]] | None:
    """A table's row filter as `tables.get` shows it: (full function name, input columns)."""
    found = info.row_filter
    if found is None or not found.function_name:
        return None
    return found.function_name.lower(), tuple(found.input_column_names or ())


class _Wrap:
    """Turns a Databricks API error into a `CatalogError` naming the object and the setting."""

    def __init__(self, subject: str, setting: str):
        self.subject, self.setting = subject, setting

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        from databricks.sdk.errors import DatabricksError

        if isinstance(exc, DatabricksError):
            raise CatalogError(f"{self.subject}: {exc} (check {self.setting})") from None
