"""Dagster resources: the lakehouse settings and the transform engine, resolved when built.

The composition of every resource a run needs (`platform_resources`) lives in `definitions.py`."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg

from medallion_platform.catalog import Catalog, build_catalog
from medallion_platform.engine import Engine, build_engine, engine_kind
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.settings import Settings

__all__ = ["EngineResource", "LakehouseResource"]


class LakehouseResource(dg.ConfigurableResource):
    """Where the zones live. Unset fields come from `MEDALLION_*` variables at run time."""

    data_dir: str | None = None
    env: str | None = None

    def settings(self) -> Settings:
        overrides: dict[str, Any] = {}
        if self.data_dir:
            overrides["data_dir"] = self.data_dir
        if self.env:
            overrides["env"] = self.env
        return Settings.from_env(**overrides)

    def lake(self) -> Lakehouse:
        """The deployment's tables, by zone."""
        return Lakehouse(self.settings())

    def catalog(self) -> Catalog:
        """The catalog the settings name: embedded, or Unity Catalog."""
        return build_catalog(self.settings())


class EngineResource(dg.ConfigurableResource):
    """The PySpark-API engine: `embedded` (SQLFrame on DuckDB) unless MEDALLION_ENGINE says `spark`
    (or `databricks`, which the Databricks step launcher sets on the cluster)."""

    kind: str | None = None
    """One of `EngineKind` (Dagster config has no `Literal`); unset: `MEDALLION_ENGINE`."""

    @contextmanager
    def session(self) -> Iterator[Engine]:
        """A fresh engine for one asset computation (Spark reuses its process-wide session); closing it
        drops what the computation made, such as persisted validation tables."""
        engine = build_engine(engine_kind(self.kind) if self.kind else Settings.from_env().engine)
        try:
            yield engine
        finally:
            engine.close()
