"""The driver's memory on the cluster path at 1x and 20x the data (issue 20): every source step, both
histories and all four refined tables on the `databricks` engine, against the Databricks stand-in's Sail
cluster over its Unity Catalog, each size in a fresh driver process whose own peak RSS (`VmHWM`) is reported.
Sail runs in its own process, as a cluster's executors do; the driver should hold no table data.

    python -m medallion_devtools.bench.driver_rss --orders 3000 [--scales 1,20]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from medallion_devtools.bench.measure import peak_rss_mb

__all__ = ["main"]


def _driver(remote: str, data_dir: str, catalog: str, warehouse: str) -> dict:
    """One run of the cluster path in this process, as a job's driver runs it."""
    from pyspark.sql.connect.session import SparkSession

    from medallion_platform.contracts import load_contracts
    from medallion_platform.engine.databricks import DatabricksEngine
    from medallion_platform.lake.lakehouse import Lakehouse
    from medallion_platform.zones.flow import ingest_and_promote
    from medallion_platform.zones.history import refresh_history
    from medallion_platform.zones.refined import REFINED_TABLES
    from medallion_platform.zones.refined.base import refresh_refined
    from medallion_platform.zones.refined.coverage import pending_dates

    os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
    spark = SparkSession.builder.remote(remote).create()
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    engine = DatabricksEngine(spark)
    lake, contracts = Lakehouse(_settings(Path(data_dir), catalog, warehouse)), load_contracts()
    start_rss, start = peak_rss_mb(), time.monotonic()
    rows, steps = {}, {}
    for name, contract in contracts.items():
        _, promoted = ingest_and_promote(lake, engine, contract)
        if contract.history is not None:
            refresh_history(lake, engine, contract)
        rows[name], steps[name] = promoted.raw_rows, round(peak_rss_mb(), 1)
    for table in REFINED_TABLES:
        refresh_refined(lake, engine, table, pending_dates(lake, table, engine) if table.partitioned else None)
        steps[table.name] = round(peak_rss_mb(), 1)
    return {
        "raw_rows": rows,
        "wall_s": round(time.monotonic() - start, 1),
        "driver_rss_after_start_mb": round(start_rss, 1),
        "driver_peak_rss_after_each_step_mb": steps,
        "driver_peak_rss_mb": round(peak_rss_mb(), 1),
    }


def _settings(data_dir: Path, catalog: str = "medallion", warehouse: str = ""):  # type: ignore[no-untyped-def]
    from medallion_platform.settings import Settings

    return Settings.from_env(
        {},
        data_dir=data_dir,
        env="databricks",
        catalog_kind="unity",
        catalog_name=catalog,
        catalog_storage_root=str(data_dir / "catalog-managed"),
        databricks_warehouse_id=warehouse,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=3000, help="orders of the sample at 1x (default: 3000)")
    parser.add_argument("--scales", default="1,20", help="comma-separated multiples of --orders (default: 1,20)")
    args = parser.parse_args(argv)
    scales = [int(s) for s in args.scales.split(",")]

    from medallion_devtools.standins.databricks import DEFAULT_CURRENT_USER, LocalDatabricks
    from medallion_platform.ingestion.sample_data import SampleSpec, generate_sample_data
    from medallion_platform.zones.entries import governed_principals

    with tempfile.TemporaryDirectory(prefix="driver-rss-") as work:
        base = Path(work)
        os.environ["DATABRICKS_CONFIG_FILE"] = str(base / "absent")  # no ~/.databrickscfg
        catalogs = tuple(f"rss_x{s}" for s in scales)
        dbx = LocalDatabricks(
            root=base / "databricks",
            max_run_seconds=3600,
            principals=governed_principals(_settings(base)),
            legacy=True,
            metastore_admins=(DEFAULT_CURRENT_USER,),
            external_locations={"work": f"file://{base}"},
            cluster_catalogs=catalogs,
        ).start()
        cluster = dbx.engine
        assert cluster is not None  # the stand-in starts its Sail cluster unless told not to
        try:
            for scale, catalog in zip(scales, catalogs, strict=True):
                data = base / f"x{scale}"
                spec = SampleSpec(orders=args.orders * scale, customers=200 * scale)
                generate_sample_data(Path(_settings(data).landing_root), spec)
                driver = [sys.executable, "-m", "medallion_devtools.bench.driver_rss", "--driver", cluster.remote]
                child = subprocess.run(
                    [*driver, str(data), catalog, dbx.warehouse_id],
                    capture_output=True,
                    text=True,
                    timeout=3600,
                    env={**os.environ, "DATABRICKS_HOST": dbx.host, "DATABRICKS_TOKEN": dbx.token},
                )
                if child.returncode != 0:
                    print(child.stderr[-4000:], file=sys.stderr)
                    return 1
                print(json.dumps({"scale": scale, **json.loads(child.stdout.strip().splitlines()[-1])}), flush=True)
        finally:
            dbx.stop()
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--driver":
        print(json.dumps(_driver(*sys.argv[2:6])))
        sys.exit(0)
    sys.exit(main())
