"""What a Unity Catalog account must hold for Medallion, in one place: the platform principal's privileges, which the
Pulumi program grants on a real account (`infra_pulumi/components/databricks_workspace.py`) and `provision` grants
through the API (the local stand-in's set-up, as an account admin).

The platform principal (`MEDALLION_PLATFORM_PRINCIPAL`) is whom the orchestrator's token and the clusters' runs act as.
It registers and writes every zone's tables, owns raw's, tags PII columns after a table's ownership has moved to its
contract owner (APPLY TAG), stages code in the staging volume (READ/WRITE VOLUME), and may create external tables in
each zone's external location: raw's is read-only (READ FILES, no WRITE FILES), the others read-write. Nothing else:
no metastore privilege, no EXTERNAL USE SCHEMA (nothing of Medallion reads tables with vended credentials), no MANAGE.
"""

import contextlib
from collections.abc import Mapping
from typing import Any

from medallion_platform.naming import ZONES
from medallion_platform.settings import DEFAULT_GRANTS, Settings

__all__ = [
    "PLATFORM_LOCATION_PRIVILEGES",
    "PLATFORM_PRIVILEGES",
    "PLATFORM_SCHEMA",
    "STAGING_VOLUME",
    "STAGING_VOLUME_PRIVILEGES",
    "provision",
    "schema_grants",
]

PLATFORM_PRIVILEGES: Mapping[str, list[str]] = {
    "raw": ["USE_SCHEMA", "SELECT", "MODIFY", "CREATE_TABLE"],
    "trusted": ["USE_SCHEMA", "SELECT", "MODIFY", "CREATE_TABLE", "APPLY_TAG"],
    "refined": ["USE_SCHEMA", "SELECT", "MODIFY", "CREATE_TABLE", "APPLY_TAG"],
}
"""On each zone's schema. Raw's tables stay the platform's own (no APPLY TAG needed); trusted and refined tables
belong to their contract or module owner once registered, so tagging them needs APPLY TAG."""
PLATFORM_LOCATION_PRIVILEGES: Mapping[str, list[str]] = {
    zone: ["CREATE_EXTERNAL_TABLE", "READ_FILES"] + ([] if zone == "raw" else ["WRITE_FILES"]) for zone in ZONES
}
"""On each zone's external location (raw's is read-only)."""
PLATFORM_SCHEMA, STAGING_VOLUME = "platform", "staging"
"""`<catalog>.platform.staging`: where the platform stages code and Pipes messages (`MEDALLION_DATABRICKS_VOLUME`)."""
STAGING_VOLUME_PRIVILEGES = ["READ_VOLUME", "WRITE_VOLUME"]


def schema_grants(platform_principal: str) -> dict[str, dict[str, list[str]]]:
    """Per zone, per principal, the privileges on the zone's schema: platform + `DEFAULT_GRANTS`."""
    grants: dict[str, dict[str, list[str]]] = {}
    for zone in ZONES:
        merged = {platform_principal: list(PLATFORM_PRIVILEGES[zone])}
        for principal, privileges in DEFAULT_GRANTS.get(zone, {}).items():
            merged[principal] = sorted({*merged.get(principal, []), *privileges})
        grants[zone] = merged
    return grants


def provision(client: Any, settings: Settings, *, credential_name: str) -> None:
    """Registers, through the Unity Catalog API, what the Pulumi program registers on an account: one external
    location per zone root on `credential_name` (raw read-only), the catalog with its managed location (and an
    external location for that, unless one covers it already) and a schema per zone when missing, the platform
    schema and its staging volume, and every grant above. `client` (a databricks-sdk `WorkspaceClient`) acts as an
    account admin; what exists already is left as it is."""
    from databricks.sdk.errors import NotFound, ResourceAlreadyExists, ResourceConflict
    from databricks.sdk.service.catalog import PermissionsChange, Privilege, VolumeType

    def grant(kind: str, name: str, by_principal: Mapping[str, list[str]]) -> None:
        changes = [PermissionsChange(principal=p, add=[Privilege(x) for x in v]) for p, v in by_principal.items()]
        client.grants.update(kind, name, changes=changes)

    platform, catalog = settings.platform_principal, settings.catalog_name
    existing = {x.name for x in client.external_locations.list()}
    for zone in ZONES:
        name = f"{catalog}-{zone}"
        if name not in existing:
            root = settings.zone_roots[zone]
            client.external_locations.create(
                name=name, url=root, credential_name=credential_name, read_only=zone == "raw"
            )
        grant("external_location", name, {platform: PLATFORM_LOCATION_PRIVILEGES[zone]})
    try:
        client.catalogs.get(catalog)
    except NotFound:
        managed = settings.catalog_storage_root
        locations = [x.url or "" for x in client.external_locations.list()]
        if managed and not any(_within(managed, url) for url in locations):
            # a managed location must lie in an external location (Pulumi's catalog root is in the refined bucket's)
            client.external_locations.create(name=f"{catalog}-managed", url=managed, credential_name=credential_name)
        client.catalogs.create(name=catalog, storage_root=managed)
    for schema in (*ZONES, PLATFORM_SCHEMA):
        with contextlib.suppress(ResourceAlreadyExists, ResourceConflict):
            client.schemas.create(name=schema, catalog_name=catalog)
    grants = schema_grants(platform)
    for zone in ZONES:
        grant("schema", f"{catalog}.{zone}", grants[zone])
    grant("catalog", catalog, {p: ["USE_CATALOG"] for p in sorted({p for z in ZONES for p in grants[z]})})
    grant("schema", f"{catalog}.{PLATFORM_SCHEMA}", {platform: ["USE_SCHEMA"]})
    volume = f"{catalog}.{PLATFORM_SCHEMA}.{STAGING_VOLUME}"
    try:
        client.volumes.read(volume)
    except NotFound:
        client.volumes.create(
            catalog_name=catalog, schema_name=PLATFORM_SCHEMA, name=STAGING_VOLUME, volume_type=VolumeType.MANAGED
        )
    grant("volume", volume, {platform: STAGING_VOLUME_PRIVILEGES})


def _within(path: str, root: str) -> bool:
    """Whether the storage URL `path` lies in `root` (a bare local path is a `file://` URL)."""
    path, root = ((u if "://" in u else f"file://{u}").rstrip("/") for u in (path, root))
    return path == root or path.startswith(root + "/")
