"""The PySpark-API engines: `embedded` (SQLFrame on DuckDB, the default) and `spark` (local PySpark).

Transforms receive an `Engine` and use `engine.F` and `engine.Window` exactly as they would use
`pyspark.sql.functions` and `pyspark.sql.Window`, so the same code runs on both. The engines
themselves are imported on first use (`build_engine`), so loading the Dagster definitions stays fast.
"""

from medallion_platform.engine.base import Engine, build_engine

__all__ = ["EmbeddedEngine", "Engine", "build_engine"]


def __getattr__(name: str):
    if name == "EmbeddedEngine":
        from medallion_platform.engine.embedded import EmbeddedEngine

        return EmbeddedEngine
    raise AttributeError(name)
