"""The catalog: `medallion.<zone>.<table>` names with location, schema, owner and PII tags."""

from medallion_platform.catalog.embedded import CatalogEntry, EmbeddedCatalog

__all__ = ["CatalogEntry", "EmbeddedCatalog"]
