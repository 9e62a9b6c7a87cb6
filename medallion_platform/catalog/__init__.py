"""The catalog: `medallion.<zone>.<table>` names with location, schema, owner and PII tags.

Two implementations of one interface (`base.Catalog`): `embedded` (a JSON file beside the lake, for
`local` and `local-aws`) and `unity` (Unity Catalog through the Databricks APIs, for `databricks`, and for
`aws` when `MEDALLION_CATALOG_KIND=unity`). `build_catalog(settings)` picks the one settings name.
"""

from medallion_platform.catalog.base import Catalog, CatalogEntry, CatalogError, TableEntry
from medallion_platform.catalog.embedded import EmbeddedCatalog
from medallion_platform.settings import Settings

__all__ = ["Catalog", "CatalogEntry", "CatalogError", "EmbeddedCatalog", "TableEntry", "build_catalog"]


def build_catalog(settings: Settings) -> Catalog:
    """The catalog `settings.catalog_kind` names."""
    if settings.catalog_kind == "unity":
        from medallion_platform.catalog.unity import UnityCatalog

        return UnityCatalog(settings)
    return EmbeddedCatalog(settings)
