"""Like-for-like engine comparison: the same trusted transform and refined builds on local Spark, on a local
Spark Connect cluster with native Delta (`databricks-local`: Sail, the stand-in cluster's engine, with the
`databricks` engine's code) and embedded.

Both read the same inputs the same way (raw as one Arrow table, trusted through delta-rs), run
`zones.trusted.transform` and `build_refined` for every refined table, and write nothing, so the
ratio compares the engines alone. Spark's session start is reported on its own.
"""

import os
from typing import Any

import pyarrow.compute as pc

from medallion_devtools.bench.measure import descendant_pids, measured, peak_rss_mb, process_peak_rss_mb
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.settings import Settings

__all__ = ["SPARK_DRIVER_MEMORY", "same_transforms"]

SPARK_DRIVER_MEMORY = "8g"  # the default 2g of the parity tests is too small for millions of rows
RESULT_MESSAGE_BYTES = 2**31 - 1
"""gRPC's largest message, for the Spark Connect client of the databricks-local phase."""


def _inputs(settings: Settings) -> tuple[Any, Any, list[str]]:
    from medallion_platform.contracts import load_contracts

    lake = Lakehouse(settings)
    contract = load_contracts()["order_events"]
    raw = lake.raw(contract.name).read()
    if raw is None:
        raise RuntimeError("raw/order_events is empty: run the pipeline phase first")
    events = lake.trusted(contract.name).read(columns=["event_date"])
    if events is None:
        raise RuntimeError("trusted/order_events is empty: run the pipeline phase first")
    dates = sorted(str(d) for d in pc.unique(events.column("event_date")).to_pylist() if d is not None)
    return contract, raw, dates


def _spark_engine() -> Any:
    from pyspark.sql import SparkSession

    from medallion_platform.engine.spark import SparkEngine, local_spark_session

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # The first builder starts the JVM with more driver memory; local_spark_session then reuses it.
    builder = SparkSession.builder.master("local[2]")
    for key, value in {
        "spark.driver.memory": SPARK_DRIVER_MEMORY,
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",  # the benchmark prints its own progress
    }.items():
        builder = builder.config(key, value)
    builder.getOrCreate().sparkContext.setLogLevel("ERROR")
    return SparkEngine(local_spark_session("local[2]"))


def _sail_engine(work_dir: Any) -> tuple[Any, Any]:
    """A Sail Spark Connect server (no catalog but Spark's own: the bench reads by path) and the `databricks`
    engine on a session to it."""
    from pyspark.sql.connect.client import DefaultChannelBuilder
    from pyspark.sql.connect.session import SparkSession

    from medallion_devtools.standins.databricks.cluster_engine import SailServer
    from medallion_platform.engine.databricks import DatabricksEngine

    server = SailServer(unity_uri="", token="", catalogs=(), work_dir=work_dir / "sail").start()
    # This phase collects the trusted table to compare engines, and Sail sends some results in batches over
    # gRPC's default 128 MiB (DIVERGENCES `result_batches`): the client takes messages up to 2 GiB.
    channel = DefaultChannelBuilder(server.remote, [("grpc.max_receive_message_length", RESULT_MESSAGE_BYTES)])
    os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"  # what `SparkSession.builder.remote` sets: pyspark's API is remote
    spark = SparkSession.builder.channelBuilder(channel).getOrCreate()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    return DatabricksEngine(spark), server


def same_transforms(settings: Settings, engine_name: str) -> dict:
    """Trusted transform + every refined build on `engine_name` ("spark", "databricks-local" or "embedded"),
    measured. The Sail server's RSS counts as the engine's (`jvm_peak_rss_mb`: the descendants' peak)."""
    from medallion_platform.zones.pii import pii_hasher
    from medallion_platform.zones.refined import REFINED_TABLES
    from medallion_platform.zones.refined.base import build_refined
    from medallion_platform.zones.trusted import transform

    with measured() as load:
        contract, raw, dates = _inputs(settings)
    with measured() as start:
        server = None
        if engine_name == "spark":
            engine = _spark_engine()
        elif engine_name == "databricks-local":
            engine, server = _sail_engine(settings.data_dir.parent)
        else:
            from medallion_platform.engine.embedded import EmbeddedEngine

            engine = EmbeddedEngine()
    stages: dict[str, dict] = {}
    with measured() as work:
        with measured() as span:
            trusted, quarantined, _ = transform(engine, raw, contract, pii_hasher(settings))
        stages["trusted_transform"] = {**span.as_dict(), "rows": raw.num_rows, "trusted_rows": trusted.num_rows}
        stages["trusted_transform"]["quarantined_rows"] = quarantined.num_rows
        for table in REFINED_TABLES:
            with measured() as span:
                rows = build_refined(Lakehouse(settings), engine, table, dates if table.partitioned else None)
            stages[f"refined_{table.name}"] = {**span.as_dict(), "rows": rows.num_rows}
    jvm_rss = max((process_peak_rss_mb(p) for p in descendant_pids()), default=0.0)
    engine.close()
    if engine_name in ("spark", "databricks-local"):
        engine.spark.stop()
    if server is not None:
        server.stop()
    return {
        **work.as_dict(),
        "engine": engine_name,
        "rows": raw.num_rows,
        "rows_per_s": round(raw.num_rows / work.wall_s, 1) if work.wall_s else 0.0,
        "session_start": start.as_dict(),
        "read_inputs": load.as_dict(),
        "stages": stages,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "jvm_peak_rss_mb": round(jvm_rss, 1),
        "dates": len(dates),
    }
