"""The PySpark-API engines: `embedded` (SQLFrame on DuckDB, the default) and `spark` (local PySpark).

Transforms receive an `Engine` and use `engine.F` and `engine.Window` exactly as they would use
`pyspark.sql.functions` and `pyspark.sql.Window`, so the same code runs on both. The engines
themselves are imported on first use (`build_engine`), so loading the Dagster definitions stays fast.
"""

from typing import TYPE_CHECKING, get_args

from medallion_platform.engine.base import Engine, EngineKind

if TYPE_CHECKING:
    from medallion_platform.engine.embedded import EmbeddedEngine

__all__ = ["EmbeddedEngine", "Engine", "EngineKind", "build_engine", "engine_kind"]


def engine_kind(name: str) -> EngineKind:
    """`name` as an `EngineKind` (a Dagster resource's config field is a plain string), else ValueError."""
    for kind in get_args(EngineKind):
        if name == kind:
            return kind  # type: ignore[no-any-return]  # one of the Literal's values
    raise ValueError(f"unknown engine {name!r}: use 'embedded', 'spark' or 'databricks' (MEDALLION_ENGINE)")


def build_engine(kind: EngineKind) -> Engine:
    """The engine called `kind`: `embedded`, `spark` (local PySpark) or `databricks` (the cluster's session)."""
    if kind == "embedded":
        from medallion_platform.engine.embedded import EmbeddedEngine

        return EmbeddedEngine()
    if kind == "spark":
        from medallion_platform.engine.spark import SparkEngine

        return SparkEngine()
    if kind == "databricks":
        from medallion_platform.engine.databricks import DatabricksEngine

        return DatabricksEngine()
    raise ValueError(f"unknown engine {kind!r}: use 'embedded', 'spark' or 'databricks' (MEDALLION_ENGINE)")


def __getattr__(name: str) -> object:
    if name == "EmbeddedEngine":
        from medallion_platform.engine.embedded import EmbeddedEngine

        return EmbeddedEngine
    raise AttributeError(name)
