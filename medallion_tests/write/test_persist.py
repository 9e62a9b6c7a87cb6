"""Every route that writes a table registers it: no table exists unregistered (`write/persist.py`).

One test per caller: the Delta IO manager, the flow (landing -> raw -> trusted, what the benchmark
runs) with the CLI's refined refresh, the source step and refined assets in real Dagster runs (what
`medallion materialize` and `demo` run), and maintenance. The ingest logs are internal bookkeeping
and the one kind of table the catalog does not list.
"""

import datetime as dt
from pathlib import Path

import dagster as dg
import pyarrow as pa

from medallion_platform.catalog import TableEntry, build_catalog
from medallion_platform.contracts import load_contracts
from medallion_platform.defs.io_manager import DeltaIOManager
from medallion_platform.defs.resources import LakehouseResource
from medallion_platform.ingestion.sample_data import SampleSpec, generate_sample_data
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.settings import Settings
from medallion_platform.write.spec import Append, TableWrite
from medallion_platform.zones.flow import ingest_and_promote
from medallion_platform.zones.history import refresh_history
from medallion_platform.zones.maintenance import maintain_lakehouse
from medallion_platform.zones.refined import REFINED_TABLES
from medallion_platform.zones.refined.base import refresh_refined


def _delta_tables(settings: Settings) -> set[str]:
    """`<zone>.<table>` of every Delta table on disk (a folder holding `_delta_log`), ingest logs apart."""
    found = set()
    for zone, root in settings.zone_roots.items():
        for log in Path(root).rglob("_delta_log"):
            name = log.parent.relative_to(root).as_posix()
            if not name.startswith("_ingest_log/"):
                found.add(f"{zone}.{name}")
    return found


def _catalogued(settings: Settings) -> set[str]:
    return {f"{e.zone}.{e.table}" for e in build_catalog(settings).entries().values()}


def test_a_table_the_io_manager_writes_is_registered(settings, lake, embedded):
    schema = pa.schema([("id", pa.int64())])
    frame = embedded.dataframe(pa.table({"id": [1, 2]}, schema=schema))
    entry = TableEntry(description="things", owner="team:things")
    write = TableWrite(engine=embedded, frame=frame, spec=Append(), schema=schema, entry=entry)
    io_manager = DeltaIOManager(lakehouse=LakehouseResource(data_dir=str(settings.data_dir), env="local"))
    io_manager.handle_output(dg.build_output_context(asset_key=dg.AssetKey(["refined", "things"])), write)
    assert _delta_tables(settings) == {"refined.things"}
    assert _catalogued(settings) == {"refined.things"}
    assert build_catalog(settings).entries()["medallion.refined.things"].owner == "team:things"


def test_tables_the_flow_and_the_refined_refresh_write_are_registered(settings, lake, embedded):
    generate_sample_data(Path(settings.landing_root), SampleSpec(orders=120, customers=30, products=10))
    bad = Path(settings.landing_root) / "landing" / "order_events" / "not-a-date" / "x.jsonl"
    bad.parent.mkdir(parents=True)
    bad.write_text("{}\n")  # outside the dated layout: recorded in raw/order_events_rejected
    for contract in load_contracts().values():
        ingest_and_promote(lake, embedded, contract)
    for contract in load_contracts().values():
        if contract.history is not None:  # the history assets, which segment_revenue reads
            refresh_history(lake, embedded, contract)
    for table in REFINED_TABLES:
        refresh_refined(lake, embedded, table, ["2026-11-01"] if table.partitioned else None)
    written = _delta_tables(settings)
    assert {"raw.order_events", "trusted.order_events", "raw.order_events_rejected", "refined.daily_revenue"} <= written
    assert written == _catalogued(settings)
    assert any(Path(settings.zone_roots["raw"], "_ingest_log").iterdir())  # written, and not listed


def test_every_table_a_materialize_run_writes_is_registered(sample_lake):
    settings = sample_lake[0]
    written = _delta_tables(settings)
    assert len(written) >= 3 * len(load_contracts()) + len(REFINED_TABLES)
    assert written == _catalogued(settings)


def test_tables_maintenance_rewrites_stay_registered(settings, lake, embedded):
    for start in (dt.date(2026, 11, 1), dt.date(2026, 11, 20)):  # two batches: tables of several files
        generate_sample_data(
            Path(settings.landing_root), SampleSpec(orders=120, customers=30, products=10, start=start)
        )
        for contract in load_contracts().values():
            ingest_and_promote(lake, embedded, contract)
    done = list(maintain_lakehouse(Lakehouse(settings), build_catalog(settings), retention_hours=0))
    assert {".".join(d.key) for d in done} == _catalogued(settings) == _delta_tables(settings)
    assert any(d.table.files_removed or d.table.vacuumed for d in done)  # it did rewrite something
