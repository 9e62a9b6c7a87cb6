"""The PySpark-API engines: `embedded` (SQLFrame on DuckDB, the default) and `spark` (local PySpark).

Transforms receive an `Engine` and use `engine.F` and `engine.Window` exactly as they would use
`pyspark.sql.functions` and `pyspark.sql.Window`, so the same code runs on both.
"""

from medallion_platform.engine.base import Engine, build_engine
from medallion_platform.engine.embedded import EmbeddedEngine

__all__ = ["EmbeddedEngine", "Engine", "build_engine"]
