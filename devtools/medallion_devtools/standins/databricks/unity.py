"""A Unity Catalog metastore in memory: catalogs, schemas and EXTERNAL Delta tables, their owners, comments,
tags and grants, external locations, temporary table credentials, and SQL functions with the column masks and row
filters that use them, behind `/api/2.1/unity-catalog/*`.

Privileges hold (`access.py`): each request acts as its token's principal, which owns what it creates; reading,
creating, changing and granting each need what Databricks documents (USE CATALOG, USE SCHEMA, CREATE SCHEMA,
CREATE TABLE, SELECT, MODIFY, APPLY TAG, READ/WRITE VOLUME, EXTERNAL USE SCHEMA, ownership or MANAGE).

Functions are created by SQL (`CREATE FUNCTION … RETURN <expr>`) and read through `functions/{full_name}`
(`FunctionInfo`: parameters, return type, `routine_definition` = the body as written). A column's mask shows on
`tables.get` as `ColumnInfo.mask {function_name, using_column_names}`, a table's row filter as
`TableInfo.row_filter {function_name, input_column_names}`. The warehouse enforces them on every query, for its
caller (`queries.py`); the cluster engine (Sail) reads the Delta files and does not.

Tables are registered by SQL (`sql.py`), as on Databricks: the SDK has no `tables.create`. A table's columns are
read from its Delta log when it is created or synced and stored, as Unity Catalog does. Names of catalogs,
schemas and tables are case-insensitive and kept in lower case; column names keep their case.

Tags have no read API in databricks-sdk 0.60; they are served as Databricks serves them, through
`GET /api/2.1/unity-catalog/entity-tag-assignments/{entity_type}/{entity_name}/tags[/{tag_key}]`
(entity types `catalogs`, `schemas`, `tables`, `columns`; a column's name is `catalog.schema.table.column`).
"""

import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from medallion_devtools.standins.databricks.access import ACCOUNT_USERS, Access, caller, permission_denied
from medallion_devtools.standins.databricks.delta_columns import DeltaSnapshot, read_delta_snapshot
from medallion_devtools.standins.databricks.errors import ApiError, JsonObject, bad_request, not_found
from medallion_devtools.standins.databricks.grants import Grants
from medallion_devtools.standins.databricks.locations import ExternalLocations
from medallion_devtools.standins.databricks.volumes import Volumes

__all__ = [
    "ACCOUNT_ADMIN",
    "DEFAULT_CURRENT_USER",
    "EntityType",
    "FunctionEntry",
    "TableEntry",
    "UnityCatalog",
    "now_ms",
]

DEFAULT_CURRENT_USER = "standin-user@example.com"
ACCOUNT_ADMIN = "account-admin@example.com"
"""The account admin who deploys the workspace (Pulumi's principal): a metastore admin, owner of what the set-up
creates."""
CREDENTIAL_SECONDS = 3600
EntityType = Literal["catalogs", "schemas", "tables", "columns"]


def now_ms() -> int:
    """The time in epoch milliseconds, as every Unity Catalog timestamp is given."""
    return int(time.time() * 1000)


@dataclass
class _Securable:
    name: str
    owner: str
    comment: str | None = None
    created_at: int = field(default_factory=now_ms)
    updated_at: int = field(default_factory=now_ms)
    properties: dict[str, str] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def _common(self, metastore_id: str) -> JsonObject:
        info: JsonObject = {
            "name": self.name,
            "owner": self.owner,
            "created_at": self.created_at,
            "created_by": self.owner,
            "updated_at": self.updated_at,
            "updated_by": self.owner,
            "properties": dict(self.properties),
            "metastore_id": metastore_id,
        }
        if self.comment is not None:
            info["comment"] = self.comment
        return info

    def touch(self) -> None:
        self.updated_at = now_ms()


@dataclass
class _Catalog(_Securable):
    storage_root: str | None = None

    def info(self, metastore_id: str) -> JsonObject:
        info = {
            **self._common(metastore_id),
            "full_name": self.name,
            "catalog_type": "MANAGED_CATALOG",
            "isolation_mode": "OPEN",
            "securable_type": "CATALOG",
            "id": self.id,
        }
        if self.storage_root:
            info |= {"storage_root": self.storage_root, "storage_location": self.storage_root}
        return info


@dataclass
class _Schema(_Securable):
    catalog_name: str = ""
    storage_root: str | None = None

    @property
    def full_name(self) -> str:
        return f"{self.catalog_name}.{self.name}"

    def info(self, metastore_id: str) -> JsonObject:
        info = {
            **self._common(metastore_id),
            "catalog_name": self.catalog_name,
            "full_name": self.full_name,
            "catalog_type": "MANAGED_CATALOG",
            "schema_id": self.id,
        }
        if self.storage_root:
            info |= {"storage_root": self.storage_root, "storage_location": self.storage_root}
        return info


@dataclass
class TableEntry(_Securable):
    """An EXTERNAL Delta table: where it is, and the columns and properties stored at its last create/sync."""

    catalog_name: str = ""
    schema_name: str = ""
    storage_location: str = ""
    columns: list[JsonObject] = field(default_factory=list)
    column_comments: dict[str, str] = field(default_factory=dict)
    masks: dict[str, JsonObject] = field(default_factory=dict)
    """column name -> `ColumnMask` JSON."""
    row_filter: JsonObject | None = None
    """`TableRowFilter` JSON."""

    @property
    def full_name(self) -> str:
        return f"{self.catalog_name}.{self.schema_name}.{self.name}"

    def info(self, metastore_id: str) -> JsonObject:
        """`TableInfo`, with every field delta-rs' strict `Table` model requires."""
        columns = []
        for column in self.columns:
            comment = self.column_comments.get(column["name"], column.get("comment"))
            described = {**column, "comment": comment} if comment is not None else dict(column)
            if column["name"] in self.masks:
                described["mask"] = dict(self.masks[column["name"]])
            columns.append(described)
        extra: JsonObject = {"row_filter": dict(self.row_filter)} if self.row_filter else {}
        return {
            **extra,
            **self._common(metastore_id),
            "catalog_name": self.catalog_name,
            "schema_name": self.schema_name,
            "full_name": self.full_name,
            "table_type": "EXTERNAL",
            "data_source_format": "DELTA",
            "columns": columns,
            "storage_location": self.storage_location,
            "table_id": self.id,
            "securable_kind_manifest": {"securable_kind": "TABLE_EXTERNAL"},
        }


_TYPE_NAMES = {"BIGINT": "LONG", "INT": "INT", "SMALLINT": "SHORT", "TINYINT": "BYTE"}


@dataclass
class FunctionEntry(_Securable):
    """A SQL function: its parameters `(name, TYPE)`, return type and body as written."""

    catalog_name: str = ""
    schema_name: str = ""
    params: tuple[tuple[str, str], ...] = ()
    returns: str = "STRING"
    body: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.catalog_name}.{self.schema_name}.{self.name}"

    def info(self, metastore_id: str) -> JsonObject:
        """`FunctionInfo`."""
        return {
            **self._common(metastore_id),
            "catalog_name": self.catalog_name,
            "schema_name": self.schema_name,
            "full_name": self.full_name,
            "function_id": self.id,
            "specific_name": self.name,
            "input_params": {
                "parameters": [
                    {"name": n, "type_text": t.lower(), "type_name": _type_name(t), "position": i}
                    for i, (n, t) in enumerate(self.params)
                ]
            },
            "data_type": _type_name(self.returns),
            "full_data_type": self.returns.lower(),
            "routine_body": "SQL",
            "routine_definition": self.body,
            "parameter_style": "S",
            "is_deterministic": True,
            "is_null_call": False,
            "sql_data_access": "CONTAINS_SQL",
            "security_type": "DEFINER",
            "sql_path": None,
        }


def _type_name(sql_type: str) -> str:
    """The `ColumnTypeName` of a SQL type (`DECIMAL(12,2)` → DECIMAL, `BIGINT` → LONG)."""
    base = sql_type.upper().split("(")[0]
    return _TYPE_NAMES.get(base, base)


def _split(full_name: str, parts: int, what: str) -> list[str]:
    names = full_name.lower().split(".")
    if len(names) != parts or not all(names):
        raise bad_request(f"Invalid {what} name: '{full_name}'.")
    return names


class UnityCatalog:
    """The metastore: each request acts as its token's principal (`access.caller()`); `metastore_admins` have
    every privilege, `ACCOUNT_ADMIN` (the set-up) among them."""

    def __init__(
        self,
        *,
        storage_options: Mapping[str, str],
        current_user: str = DEFAULT_CURRENT_USER,
        principals: Iterable[str] = (),
        volumes_root: Path,
        metastore_storage_root: str | None = None,
        metastore_admins: Iterable[str] = (),
        groups: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.storage_options = dict(storage_options)
        self.metastore_storage_root = metastore_storage_root
        self.current_user = current_user
        self.metastore_id = str(uuid.uuid4())
        self.groups = {group: set(members) for group, members in (groups or {}).items()}
        members = {m for group in self.groups.values() for m in group}
        self.grants = Grants({current_user, ACCOUNT_ADMIN, ACCOUNT_USERS, *principals, *self.groups, *members})
        self.access = Access(
            self._owner_of, self.grants.privileges_of, {ACCOUNT_ADMIN, *metastore_admins}, self.groups_of
        )
        self.locations = ExternalLocations(self.access, self.metastore_id, ACCOUNT_ADMIN)
        self.volumes = Volumes(
            volumes_root, self.schema_named, self.access, self.metastore_id, ACCOUNT_ADMIN, self.locations.require
        )
        self._catalogs: dict[str, _Catalog] = {}
        self._schemas: dict[str, _Schema] = {}
        self._tables: dict[str, TableEntry] = {}
        self._functions: dict[str, FunctionEntry] = {}
        self._tags: dict[tuple[EntityType, str], dict[str, str | None]] = {}
        self.lock = threading.RLock()

    def groups_of(self, principal: str) -> set[str]:
        """The groups `principal` is a member of (`account users` aside)."""
        return {group for group, members in self.groups.items() if principal in members}

    def _owner_of(self, kind: str, full_name: str) -> str | None:
        found: object
        if kind == "catalog":
            found = self._catalogs.get(full_name)
        elif kind == "schema":
            found = self._schemas.get(full_name)
        elif kind == "table":
            found = self._tables.get(full_name)
        elif kind == "volume":
            found = self.volumes.find(full_name)
        elif kind == "external_location":
            found = self.locations.find(full_name)
        else:
            return None
        owner = getattr(found, "owner", None)
        return owner if isinstance(owner, str) else None

    @staticmethod
    def owner() -> str:
        """Who owns what the current request creates: its principal (the account admin for the set-up)."""
        return caller() or ACCOUNT_ADMIN

    # Lookups: `find_*` give None, `*_named` the REST 404.
    def find_catalog(self, name: str) -> _Catalog | None:
        with self.lock:
            return self._catalogs.get(name.lower())

    def find_schema(self, full_name: str) -> _Schema | None:
        with self.lock:
            return self._schemas.get(full_name.lower())

    def find_table(self, full_name: str) -> TableEntry | None:
        with self.lock:
            return self._tables.get(full_name.lower())

    def catalog_named(self, name: str) -> _Catalog:
        found = self.find_catalog(name)
        if found is None:
            raise ApiError(404, "CATALOG_DOES_NOT_EXIST", f"Catalog '{name.lower()}' does not exist.")
        return found

    def schema_named(self, full_name: str) -> _Schema:
        catalog_name, _ = _split(full_name, 2, "schema")
        self.catalog_named(catalog_name)
        found = self.find_schema(full_name)
        if found is None:
            raise ApiError(404, "SCHEMA_DOES_NOT_EXIST", f"Schema '{full_name.lower()}' does not exist.")
        return found

    def table_named(self, full_name: str) -> TableEntry:
        catalog_name, schema_name, _ = _split(full_name, 3, "table")
        self.schema_named(f"{catalog_name}.{schema_name}")
        found = self.find_table(full_name)
        if found is None:
            raise ApiError(404, "TABLE_DOES_NOT_EXIST", f"Table '{full_name.lower()}' does not exist.")
        return found

    def securable(self, kind: str, full_name: str) -> object:
        """The catalog, schema, table or volume a permissions or tags path names (404 when missing)."""
        if kind == "catalog":
            return self.catalog_named(full_name)
        if kind == "volume":
            return self.volumes.named(full_name)
        return self.schema_named(full_name) if kind == "schema" else self.table_named(full_name)

    # Catalogs
    def create_catalog(self, body: JsonObject) -> JsonObject:
        name = _name(body)
        if not self.access.has(caller(), "metastore", self.metastore_id, "CREATE_CATALOG"):
            raise permission_denied("CREATE_CATALOG", "metastore", self.metastore_id)
        with self.lock:
            if name in self._catalogs:
                raise ApiError(409, "CATALOG_ALREADY_EXISTS", f"Catalog '{name}' already exists.")
            if not body.get("storage_root") and not self.metastore_storage_root:
                raise bad_request(
                    "Metastore storage root URL does not exist. Please provide a storage location for the catalog "
                    f"(for example 'CREATE CATALOG {name} MANAGED LOCATION '<location-path>'').",
                    "INVALID_STATE",
                )
            self._managed_storage(body.get("storage_root"))
            catalog = _Catalog(name, self.owner(), body.get("comment"), storage_root=body.get("storage_root"))
            catalog.properties.update(body.get("properties") or {})
            self._catalogs[name] = catalog
            return catalog.info(self.metastore_id)

    def _managed_storage(self, storage_root: object) -> None:
        """A catalog's or schema's managed location must lie in an external location on which the caller holds
        CREATE MANAGED STORAGE (Databricks: "must be contained in an external location"; the privilege "allows a
        user to specify a managed storage location when creating a catalog or schema")."""
        if storage_root:
            self.locations.require(str(storage_root), "CREATE_MANAGED_STORAGE")

    def get_catalog(self, name: str) -> JsonObject:
        catalog = self.catalog_named(name)
        self.access.require_any("catalog", catalog.name, "USE_CATALOG", "BROWSE")
        return catalog.info(self.metastore_id)

    def list_catalogs(self) -> JsonObject:
        with self.lock:
            catalogs = sorted(self._catalogs.items())
        visible = [c for _, c in catalogs if self.access.may_see("catalog", c.name, "USE_CATALOG", "BROWSE")]
        return {"catalogs": [c.info(self.metastore_id) for c in visible]}

    def update_catalog(self, name: str, body: JsonObject) -> JsonObject:
        with self.lock:
            catalog = self.catalog_named(name)
            self.access.require_owner("catalog", catalog.name)
            self._update(catalog, body)
            return catalog.info(self.metastore_id)

    def delete_catalog(self, name: str, force: bool) -> JsonObject:
        with self.lock:
            catalog = self.catalog_named(name)
            self.access.require_owner("catalog", catalog.name)
            inside = [s for s in self._schemas.values() if s.catalog_name == catalog.name]
            if inside and not force:
                raise bad_request(f"Catalog '{catalog.name}' is not empty.", "CATALOG_NOT_EMPTY")
            for schema in inside:
                self.delete_schema(schema.full_name, force=True)
            del self._catalogs[catalog.name]
            self._forget(catalog.name)
        return {}

    # Schemas
    def create_schema(self, body: JsonObject) -> JsonObject:
        name = _name(body)
        catalog_name = body.get("catalog_name")
        if not isinstance(catalog_name, str) or not catalog_name:
            raise bad_request("Missing required field: catalog_name")
        with self.lock:
            catalog = self.catalog_named(catalog_name)
            self.access.require("catalog", catalog.name, "CREATE_SCHEMA")
            full_name = f"{catalog.name}.{name}"
            if full_name in self._schemas:
                raise ApiError(409, "SCHEMA_ALREADY_EXISTS", f"Schema '{full_name}' already exists.")
            self._managed_storage(body.get("storage_root"))
            schema = _Schema(
                name,
                self.owner(),
                body.get("comment"),
                catalog_name=catalog.name,
                storage_root=body.get("storage_root"),
            )
            schema.properties.update(body.get("properties") or {})
            self._schemas[full_name] = schema
            return schema.info(self.metastore_id)

    def get_schema(self, full_name: str) -> JsonObject:
        schema = self.schema_named(full_name)
        self.access.require_any("schema", schema.full_name, "USE_SCHEMA", "BROWSE")
        return schema.info(self.metastore_id)

    def list_schemas(self, catalog_name: str) -> JsonObject:
        with self.lock:
            catalog = self.catalog_named(catalog_name)
            self.access.require("catalog", catalog.name, "USE_CATALOG")
            schemas = [s for s in self._schemas.values() if s.catalog_name == catalog.name]
            visible = [s for s in schemas if self.access.may_see("schema", s.full_name, "USE_SCHEMA", "BROWSE")]
            return {"schemas": [s.info(self.metastore_id) for s in sorted(visible, key=lambda s: s.name)]}

    def update_schema(self, full_name: str, body: JsonObject) -> JsonObject:
        with self.lock:
            schema = self.schema_named(full_name)
            self.access.require_owner("schema", schema.full_name)
            self._update(schema, body)
            return schema.info(self.metastore_id)

    def delete_schema(self, full_name: str, force: bool) -> JsonObject:
        with self.lock:
            schema = self.schema_named(full_name)
            self.access.require_owner("schema", schema.full_name)
            inside = [t for t in self._tables.values() if f"{t.catalog_name}.{t.schema_name}" == schema.full_name]
            if inside and not force:
                raise bad_request(f"Schema '{schema.full_name}' is not empty.", "SCHEMA_NOT_EMPTY")
            for table in inside:
                self.delete_table(table.full_name)
            for function in [f for f in self._functions.values() if f.full_name.startswith(schema.full_name + ".")]:
                self.drop_function(function.full_name)
            del self._schemas[schema.full_name]
            self._forget(schema.full_name)
        return {}

    # Tables
    def add_table(self, catalog_name: str, schema_name: str, name: str, location: str) -> TableEntry:
        """Registers an EXTERNAL Delta table, its columns read from the log (the caller checked it is new)."""
        snapshot = read_delta_snapshot(location, self.storage_options)
        table = TableEntry(
            name.lower(),
            self.owner(),
            catalog_name=catalog_name.lower(),
            schema_name=schema_name.lower(),
            storage_location=location,
        )
        self._store_snapshot(table, snapshot)
        with self.lock:
            self._tables[table.full_name] = table
        return table

    def sync_table(self, table: TableEntry) -> None:
        """Re-reads the columns and properties from the Delta log (`MSCK REPAIR TABLE … SYNC METADATA`)."""
        snapshot = read_delta_snapshot(table.storage_location, self.storage_options)
        with self.lock:
            self._store_snapshot(table, snapshot)
            table.touch()

    @staticmethod
    def _store_snapshot(table: TableEntry, snapshot: DeltaSnapshot) -> None:
        table.columns = snapshot.columns
        table.properties = {k: v for k, v in table.properties.items() if not k.startswith("delta.")}
        table.properties.update(snapshot.properties)

    def get_table(self, full_name: str) -> JsonObject:
        table = self.table_named(full_name)
        self.access.require_any("table", table.full_name, "SELECT", "BROWSE")
        return table.info(self.metastore_id)

    def table_exists(self, full_name: str) -> JsonObject:
        catalog_name, schema_name, _ = _split(full_name, 3, "table")
        schema = self.schema_named(f"{catalog_name}.{schema_name}")
        self.access.require("schema", schema.full_name, "USE_SCHEMA")
        return {"table_exists": self.find_table(full_name) is not None}

    def list_tables(self, catalog_name: str, schema_name: str) -> JsonObject:
        with self.lock:
            schema = self.schema_named(f"{catalog_name}.{schema_name}")
            self.access.require("schema", schema.full_name, "USE_SCHEMA")
            tables = [t for t in self._tables.values() if f"{t.catalog_name}.{t.schema_name}" == schema.full_name]
            visible = [t for t in tables if self.access.may_see("table", t.full_name, "SELECT", "BROWSE")]
            return {"tables": [t.info(self.metastore_id) for t in sorted(visible, key=lambda t: t.name)]}

    def update_table(self, full_name: str, body: JsonObject) -> JsonObject:
        """`PATCH tables/{full_name}`: the SDK sends only `owner`."""
        unknown = set(body) - {"owner", "full_name"}
        if unknown:
            raise bad_request(f"Only the owner of a table can be updated here, not: {', '.join(sorted(unknown))}")
        with self.lock:
            table = self.table_named(full_name)
            self.access.require_owner("table", table.full_name)
            if "owner" in body:
                self.set_owner(table, body["owner"])
        return {}

    def delete_table(self, full_name: str) -> JsonObject:
        """Unregisters a table; its files are left alone, as for any EXTERNAL table."""
        with self.lock:
            table = self.table_named(full_name)
            self.access.require_owner("table", table.full_name)
            del self._tables[table.full_name]
            self._forget(table.full_name)
        return {}

    def set_owner(self, securable: _Securable, owner: object) -> None:
        securable.owner = self.grants.check_principal(owner)
        securable.touch()

    def _update(self, securable: _Catalog | _Schema, body: JsonObject) -> None:
        if "new_name" in body:
            raise bad_request("The stand-in does not rename catalogs or schemas.")
        if "owner" in body:
            self.set_owner(securable, body["owner"])
        if "comment" in body:
            securable.comment = body["comment"]
        if "properties" in body:
            securable.properties.update(body["properties"] or {})
        securable.touch()

    def _forget(self, full_name: str) -> None:
        self.grants.drop(full_name)
        for key in [k for k in self._tags if k[1] == full_name or k[1].startswith(full_name + ".")]:
            del self._tags[key]

    # Tags
    def set_tags(self, entity_type: EntityType, entity_name: str, tags: Mapping[str, str | None]) -> None:
        """Adds or replaces tags (a tag may have no value) on an entity the caller checked exists."""
        with self.lock:
            self._tags.setdefault((entity_type, entity_name.lower()), {}).update(tags)

    def list_tags(self, entity_type: str, entity_name: str) -> JsonObject:
        """`GET entity-tag-assignments/{entity_type}/{entity_name}/tags`."""
        kind = self._tag_entity(entity_type, entity_name)
        with self.lock:
            tags = dict(self._tags.get((kind, entity_name.lower()), {}))
        return {"tag_assignments": [_tag(kind, entity_name.lower(), k, v) for k, v in sorted(tags.items())]}

    def get_tag(self, entity_type: str, entity_name: str, tag_key: str) -> JsonObject:
        """`GET entity-tag-assignments/{entity_type}/{entity_name}/tags/{tag_key}`."""
        kind = self._tag_entity(entity_type, entity_name)
        with self.lock:
            tags = self._tags.get((kind, entity_name.lower()), {})
            if tag_key not in tags:
                raise not_found(f"Tag assignment with key '{tag_key}' does not exist on {entity_name.lower()}.")
            return _tag(kind, entity_name.lower(), tag_key, tags[tag_key])

    def _tag_entity(self, entity_type: str, entity_name: str) -> EntityType:
        if entity_type == "columns":
            table_name, _, column = entity_name.rpartition(".")
            table = self.table_named(table_name)
            self.access.require_any("table", table.full_name, "SELECT", "BROWSE")
            if column not in {c["name"] for c in table.columns}:
                raise not_found(f"Column '{column}' does not exist in table '{table.full_name}'.")
            return "columns"
        if entity_type not in ("catalogs", "schemas", "tables"):
            raise bad_request(f"Unsupported entity type: {entity_type}. Use catalogs, schemas, tables or columns.")
        kind = entity_type.removesuffix("s")
        self.securable(kind, entity_name)
        self.access.require_any(kind, entity_name.lower(), *_SEE[kind])
        return entity_type  # type: ignore[return-value]  # one of the three literals, checked above

    # Functions
    def find_function(self, full_name: str) -> FunctionEntry | None:
        with self.lock:
            return self._functions.get(full_name.lower())

    def function_named(self, full_name: str) -> FunctionEntry:
        catalog_name, schema_name, _ = _split(full_name, 3, "function")
        self.schema_named(f"{catalog_name}.{schema_name}")
        found = self.find_function(full_name)
        if found is None:
            raise ApiError(404, "FUNCTION_DOES_NOT_EXIST", f"Function '{full_name.lower()}' does not exist.")
        return found

    def put_function(
        self,
        catalog_name: str,
        schema_name: str,
        name: str,
        params: tuple[tuple[str, str], ...],
        returns: str,
        body: str,
    ) -> FunctionEntry:
        """Creates or replaces a function (the caller checked the schema and OR REPLACE / IF NOT EXISTS)."""
        function = FunctionEntry(
            name.lower(),
            self.current_user,
            catalog_name=catalog_name.lower(),
            schema_name=schema_name.lower(),
            params=params,
            returns=returns,
            body=body,
        )
        with self.lock:
            old = self._functions.get(function.full_name)
            if old is not None:  # a replaced function keeps its identity and owner
                function.id, function.owner, function.created_at = old.id, old.owner, old.created_at
            self._functions[function.full_name] = function
        return function

    def drop_function(self, full_name: str) -> None:
        with self.lock:
            self._functions.pop(full_name.lower(), None)
            self._forget(full_name.lower())

    def get_function(self, full_name: str) -> JsonObject:
        return self.function_named(full_name).info(self.metastore_id)

    def list_functions(self, catalog_name: str, schema_name: str) -> JsonObject:
        with self.lock:
            schema = self.schema_named(f"{catalog_name}.{schema_name}")
            found = [f for f in self._functions.values() if f"{f.catalog_name}.{f.schema_name}" == schema.full_name]
            return {"functions": [f.info(self.metastore_id) for f in sorted(found, key=lambda f: f.name)]}

    def delete_function(self, full_name: str) -> JsonObject:
        self.function_named(full_name)
        self.drop_function(full_name)
        return {}

    # Temporary credentials
    def temporary_table_credentials(self, body: JsonObject) -> JsonObject:
        """`GenerateTemporaryTableCredentialResponse`: the stand-in's own S3 credentials for an s3:// table,
        with the S3 endpoint as `access_point` (delta-rs uses it as `AWS_ENDPOINT_URL`)."""
        table_id, operation = body.get("table_id"), body.get("operation")
        if operation not in ("READ", "READ_WRITE"):
            raise bad_request(f"Invalid operation: {operation!r}. Use READ or READ_WRITE.")
        with self.lock:
            table = next((t for t in self._tables.values() if t.id == table_id), None)
        if table is None:
            raise ApiError(404, "TABLE_DOES_NOT_EXIST", f"Table with id '{table_id}' does not exist.")
        # credential vending: EXTERNAL USE SCHEMA (granted explicitly), and what the operation itself needs
        self.access.require("schema", f"{table.catalog_name}.{table.schema_name}", "EXTERNAL_USE_SCHEMA")
        self.access.require("table", table.full_name, "SELECT", *(["MODIFY"] if operation == "READ_WRITE" else []))
        location = self.locations.covering(table.storage_location)
        if operation == "READ_WRITE" and location is not None and location.read_only:
            raise ApiError(
                403,
                "PERMISSION_DENIED",
                f"Table '{table.full_name}' is in the read-only External Location '{location.name}': "
                "no READ_WRITE credentials for it.",
            )
        if not table.storage_location.startswith(("s3://", "s3a://")):
            raise bad_request(
                f"Table '{table.full_name}' is at {table.storage_location}: the stand-in vends temporary "
                "credentials for s3:// locations only."
            )
        options = {k.lower(): v for k, v in self.storage_options.items()}
        key_id, secret = options.get("aws_access_key_id"), options.get("aws_secret_access_key")
        if not key_id or not secret:
            raise bad_request(
                "The stand-in has no S3 credentials to vend: give LocalDatabricks(storage_options=...) "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
            )
        credentials = {
            "access_key_id": key_id,
            "secret_access_key": secret,
            "session_token": options.get("aws_session_token") or f"standin-{secrets.token_hex(16)}",
        }
        endpoint = options.get("aws_endpoint_url") or options.get("aws_endpoint")
        if endpoint:
            credentials["access_point"] = endpoint
        return {
            "aws_temp_credentials": credentials,
            "expiration_time": now_ms() + CREDENTIAL_SECONDS * 1000,
            "url": table.storage_location,
        }


_SEE = {"catalog": ("USE_CATALOG", "BROWSE"), "schema": ("USE_SCHEMA", "BROWSE"), "table": ("SELECT", "BROWSE")}


def _name(body: JsonObject) -> str:
    name = body.get("name")
    if not isinstance(name, str) or not name or "." in name:
        raise bad_request(f"Invalid name: {name!r}")
    return name.lower()


def _tag(entity_type: str, entity_name: str, key: str, value: str | None) -> JsonObject:
    tag: JsonObject = {"entity_type": entity_type, "entity_name": entity_name, "tag_key": key}
    if value is not None:
        tag["tag_value"] = value
    return tag
