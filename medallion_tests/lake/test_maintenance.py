"""Compaction and vacuum: many small files become few, the data does not change."""

import dagster as dg
import pyarrow as pa

from medallion_platform.automation.maintenance import maintenance_job
from medallion_platform.catalog import EmbeddedCatalog, TableEntry
from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.resources import LakehouseResource
from medallion_platform.zones.flow import ingest_raw
from medallion_tests.helpers import event, jsonl, land


def _maintain(settings):
    """Runs the maintenance job, keeping no old versions."""
    return maintenance_job.execute_in_process(
        resources={"lakehouse": LakehouseResource(data_dir=str(settings.data_dir))},
        run_config={"ops": {"compact_and_vacuum": {"config": {"retention_hours": 0}}}},
    )


def test_maintenance_job_compacts_and_vacuums(settings):
    uri = settings.table_uri("raw", "order_events")
    table = DeltaTableIO(uri)
    for n in range(12):  # a dozen Firehose-sized appends
        table.append(
            pa.table({"id": list(range(n * 10, n * 10 + 10)), "day": ["2026-11-01"] * 10}), partition_by=["day"]
        )
    before = table.table()
    assert len(before.file_uris()) == 12
    rows_before = sorted(before.to_pyarrow_table().column("id").to_pylist())
    EmbeddedCatalog(settings).register(
        "raw", "order_events", schema=before.schema().to_arrow(), entry=TableEntry(description="t", owner="o")
    )

    result = _maintain(settings)
    assert result.success
    after = DeltaTableIO(uri).table()
    assert len(after.file_uris()) == 1
    assert sorted(after.to_pyarrow_table().column("id").to_pylist()) == rows_before
    (observation,) = [
        e.event_specific_data.asset_observation
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
    ]
    assert observation.metadata["files_compacted"].value == 12
    assert observation.metadata["files_vacuumed"].value == 12


def test_maintenance_compacts_the_raw_ingest_log_that_every_run_reads(settings, contracts, lake):
    contract = contracts["order_events"]
    for n in range(5):  # five batches: five small appends to the ingest log
        land(settings, "order_events", f"2026/11/01/1{n}/part", jsonl(event(n)))
        ingest_raw(lake, contract)
    log = lake.ingest_log("order_events")
    assert len(log.table().file_uris()) == 5
    raw = lake.raw("order_events").table()
    EmbeddedCatalog(settings).register(
        "raw", "order_events", schema=raw.schema().to_arrow(), entry=TableEntry(description="t", owner="o")
    )

    result = _maintain(settings)
    assert result.success
    compacted = lake.ingest_log("order_events").table()
    assert len(compacted.file_uris()) == 1
    assert compacted.to_pyarrow_table().num_rows == 5
    land(settings, "order_events", "2026/11/01/10/part", jsonl(event(0)))  # the same key again
    assert ingest_raw(lake, contract).rows == 0  # the compacted log still knows every file
