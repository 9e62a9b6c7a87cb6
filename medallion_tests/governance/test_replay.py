"""Quarantine replay: a contract fix releases the rows it should through the same MERGE as fresh data (an
older row never overwrites a newer one), the ledger closes, a second replay does nothing; also as a job."""

import dagster as dg
import pyarrow.compute as pc

from medallion_platform.contracts import Contract
from medallion_platform.defs.replay import quarantine_replay_job
from medallion_platform.defs.resources import EngineResource, LakehouseResource
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.zones.flow import ingest_raw
from medallion_platform.zones.replay import replay_quarantine
from medallion_platform.zones.trusted import promote
from medallion_tests.helpers import land


def _allowing(contract: Contract, column: str, value: str) -> Contract:
    """`contract` with one more allowed value in `column`: the contract fix."""
    columns = [
        c.model_copy(update={"allowed": [*(c.allowed or []), value]}) if c.name == column else c
        for c in contract.columns
    ]
    return contract.model_copy(update={"columns": columns})


def test_a_contract_fix_releases_its_rows_and_the_ledger_closes(full_lake, contracts, embedded):
    lake = full_lake
    quarantine = lake.quarantine("order_events").read()
    jpy = quarantine.filter(pc.equal(quarantine["_raw_value"], "JPY"))
    assert jpy.num_rows and set(jpy["_rule"].to_pylist()) == {"allowed"}
    trusted_before = lake.trusted("order_events").read().num_rows
    fixed = _allowing(contracts["order_events"], "currency", "JPY")

    result = replay_quarantine(lake, embedded, fixed, rule="allowed")

    assert result.reconciled and result.pending_before == sum(
        1 for r in quarantine["_rule"].to_pylist() if r == "allowed"
    )
    assert result.replayed == jpy.num_rows and result.inserted == jpy.num_rows  # new event ids: inserted
    assert result.still_quarantined == result.pending_before - jpy.num_rows
    trusted = lake.trusted("order_events").read()
    assert trusted.num_rows == trusted_before + jpy.num_rows
    assert sorted(trusted.filter(pc.equal(trusted["currency"], "JPY"))["event_id"].to_pylist()) == sorted(
        jpy["event_id"].to_pylist()
    )
    assert lake.quarantine("order_events").read().num_rows == quarantine.num_rows  # the record of what arrived bad
    assert lake.replays("order_events").read().num_rows == jpy.num_rows

    version = lake.trusted("order_events").version()
    again = replay_quarantine(lake, embedded, fixed, rule="allowed")
    assert (again.replayed, again.pending_before, again.reconciled) == (0, result.still_quarantined, True)
    assert (
        lake.trusted("order_events").version() == version
        and lake.replays("order_events").read().num_rows == jpy.num_rows
    )
    unfixed = replay_quarantine(lake, embedded, contracts["order_events"])  # without the fix nothing passes
    assert unfixed.replayed == 0 and unfixed.reconciled


HEADER = "customer_id,name,email,country,segment,updated_at\r\n"


def test_a_replayed_row_never_overwrites_a_newer_one_and_comes_from_raw_in_clear(lake, contracts, embedded):
    customers = contracts["customers"]
    land(
        lake.settings,
        "customers",
        "2026/11/01/c1.csv",
        HEADER
        + "cus-000001,Ada Lovelace,ada@example.com,GB,vip,2026-11-01T08:00:00Z\r\n"
        + "cus-000002,Grace Hopper,grace@example.com,US,vip,2026-11-01T08:00:00Z\r\n",
    )
    ingest_raw(lake, customers)
    promote(lake, embedded, customers)
    land(
        lake.settings,
        "customers",
        "2026/11/02/c2.csv",
        HEADER + "cus-000001,Ada Lovelace,ada@new.example,GB,smb,2026-11-02T08:00:00Z\r\n",
    )
    ingest_raw(lake, customers)
    promote(lake, embedded, customers)
    assert lake.quarantine("customers").read()["name"].to_pylist()[0].startswith("sha256:")  # hashed there

    result = replay_quarantine(lake, embedded, _allowing(customers, "segment", "vip"))

    assert (result.replayed, result.inserted, result.updated, result.redeliveries) == (2, 1, 0, 1)
    assert result.reconciled and result.still_quarantined == 0
    rows = {r["customer_id"]: r for r in lake.trusted("customers").read().to_pylist()}
    assert (rows["cus-000001"]["segment"], rows["cus-000001"]["email"]) == ("smb", "ada@new.example")  # newer kept
    assert (rows["cus-000002"]["segment"], rows["cus-000002"]["name"]) == ("vip", "Grace Hopper")  # from raw, in clear


def test_the_replay_job_replays_and_reports_the_ledger(full_lake):
    lake: Lakehouse = full_lake
    result = quarantine_replay_job.execute_in_process(
        run_config={"ops": {"replay_quarantined_rows": {"config": {"dataset": "products", "since": "2026-11-01"}}}},
        resources={"lakehouse": LakehouseResource(data_dir=str(lake.settings.data_dir)), "engine": EngineResource()},
    )
    assert result.success
    (observation,) = [
        e.asset_observation_data.asset_observation
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION
    ]  # type: ignore[union-attr]
    meta = {k: v.value for k, v in observation.metadata.items()}
    assert (
        meta["reconciled"] is True and meta["replayed"] == 0 and meta["pending_before"] == meta["still_quarantined"] > 0
    )
