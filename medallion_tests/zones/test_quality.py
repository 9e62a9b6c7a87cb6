"""Quality over time: each promoted batch appends its figures to `trusted/<dataset>_quality`, and the
warning-level anomaly checks flag exactly the figure that leaves its recent range."""

import dagster as dg

from medallion_platform.catalog import build_catalog
from medallion_platform.cli.main import main
from medallion_platform.defs.checks.quality import quality_check_results, quality_check_specs
from medallion_platform.write.persist import persist
from medallion_platform.zones.flow import ingest_and_promote, ingest_raw
from medallion_platform.zones.quality import Anomaly, quality_history, quality_verdicts
from medallion_platform.zones.trusted import plan_promotion, stamp_figures
from medallion_tests.helpers import event, jsonl, land

KEY = dg.AssetKey(["trusted", "order_events"])


def _batch(settings, hour: int, *, bad_currency: int = 0) -> None:
    """100 events: 2 with quantity 0 (rule min) in every batch, `bad_currency` with currency JPY (allowed)."""
    records = []
    for i in range(100):
        n = hour * 1000 + i
        if i < 2:
            records.append(event(n, quantity=0))
        elif i < 2 + bad_currency:
            records.append(event(n, currency="JPY"))
        else:
            records.append(event(n, event_time="2026-11-01T08:00:00Z" if i == 99 else "2026-11-02T08:00:00Z"))
    land(settings, "order_events", f"2026/11/02/{hour:02d}/batch.jsonl", jsonl(*records))


def test_each_batch_appends_its_figures(lake, settings, embedded, contracts):
    contract = contracts["order_events"]
    _batch(settings, 1)
    land(settings, "order_events", "2026/11/02/01/odd/x.jsonl", "{}\n")  # a folder and a file out of layout
    ingest_and_promote(lake, embedded, contract)
    rows = quality_history(lake.quality("order_events"))
    figures = {(r["figure"], r["rule"]): r["value"] for r in rows}
    assert figures[("landed", None)] == 100
    assert figures[("inserted", None)] == 98
    assert figures[("quarantined", None)] == 2 and figures[("quarantined", "min")] == 2
    assert figures[("quarantined", "allowed")] == 0  # every rule the contract can fail, zeros too
    assert figures[("late", None)] == 1  # event on 11-01, landed on 11-02
    assert figures[("rejected_objects", None)] == 2
    assert {r["batch"] for r in rows} == {"0"}
    ingest_and_promote(lake, embedded, contract)  # nothing new: nothing recorded
    assert len(quality_history(lake.quality("order_events"))) == len(rows)
    entry = build_catalog(settings).entries()["medallion.trusted.order_events_quality"]
    assert entry.owner == contract.owner


def test_a_spike_in_one_rule_raises_exactly_that_warning(lake, settings, embedded, contracts, capsys, tmp_path):
    contract = contracts["order_events"]
    before = quality_check_results(lake, contract, KEY)  # nothing recorded: every check reports, and passes
    assert {r.check_name for r in before} == {s.name for s in quality_check_specs(contract, KEY)}
    assert all(r.passed for r in before)
    for hour in range(1, 7):  # six ordinary batches: the baseline
        _batch(settings, hour)
        ingest_and_promote(lake, embedded, contract)
    results = quality_check_results(lake, contract, KEY)
    assert {r.check_name for r in results} == {s.name for s in quality_check_specs(contract, KEY)}
    assert all(r.passed for r in results)
    assert all(r.severity == dg.AssetCheckSeverity.WARN for r in results)

    _batch(settings, 7, bad_currency=30)  # the same volume, but 30 % of rows fail `allowed`
    ingest_and_promote(lake, embedded, contract)
    failed = [r for r in quality_check_results(lake, contract, KEY) if not r.passed]
    assert [r.check_name for r in failed] == ["quarantine_rate_allowed"]
    assert failed[0].metadata["value"].value == 0.3

    # the terminal trend names the same anomaly, and the chart is drawn
    chart = tmp_path / "quality.png"
    assert main(["--data-dir", str(settings.data_dir), "quality", "order_events", "--png", str(chart)]) == 0
    out = capsys.readouterr().out
    flagged = [line.split()[0] for line in out.splitlines() if line.rstrip().endswith("ANOMALY")]
    assert flagged == ["quarantine_rate_allowed"]
    assert "30.00%" in out and "7 batches" in out
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_volume_and_short_baselines():
    def history(volumes: list[int]) -> list[dict]:
        return [
            {"recorded_at": i, "batch": str(i), "figure": "landed", "rule": None, "value": v}
            for i, v in enumerate(volumes)
        ]

    verdict = quality_verdicts(history([100, 104, 97, 101, 99, 400]), [], window=20, width=3.0)[0]
    assert verdict.name == "volume" and verdict.anomalous and verdict.median == 100
    assert not quality_verdicts(history([100, 104, 97, 101, 99, 103]), [], window=20, width=3.0)[0].anomalous
    # fewer than three earlier batches: no verdict
    assert quality_verdicts(history([100, 104, 400]), [], window=20, width=3.0)[0] == Anomaly(
        "volume", 400.0, None, None, None, 2
    )
    # only the last N batches count: an old regime is forgotten
    assert not quality_verdicts(history([10, 10, 10, 10, 100, 101, 99, 100]), [], window=3, width=3.0)[0].anomalous


def _killed_before_the_quality_append(lake, engine, contract) -> None:
    """A source step that dies right after trusted's commit: raw, quarantine and trusted written, the
    batch's quality append never made."""
    ingest_raw(lake, contract)
    plan = plan_promotion(lake, engine, contract)
    assert plan is not None
    persist(lake, ("trusted", f"{contract.name}_quarantine"), plan.quarantine)
    stamp_figures(plan)
    persist(lake, ("trusted", contract.name), plan.trusted)


def _figures(lake, dataset: str, batch: str) -> dict:
    rows = quality_history(lake.quality(dataset))
    return {(r["figure"], r["rule"]): r["value"] for r in rows if r["batch"] == batch}


def test_a_run_killed_after_trusted_s_commit_leaves_its_figures_to_the_next_run(lake, settings, embedded, contracts):
    events = contracts["order_events"]
    _batch(settings, 1)
    ingest_and_promote(lake, embedded, events)
    _batch(settings, 2)
    _killed_before_the_quality_append(lake, embedded, events)
    assert _figures(lake, "order_events", "1") == {}  # the kill lost the append
    _, rerun = ingest_and_promote(lake, embedded, events)
    assert rerun.skipped  # nothing left to promote, yet the batch's figures are appended
    recovered = _figures(lake, "order_events", "1")
    assert recovered == {**_figures(lake, "order_events", "0"), ("rejected_objects", None): 0}
    assert recovered[("inserted", None)] == 98 and recovered[("quarantined", "min")] == 2
    ingest_and_promote(lake, embedded, events)  # once only
    assert len(quality_history(lake.quality("order_events"))) == 2 * len(_figures(lake, "order_events", "0"))

    customers = contracts["customers"]  # a MERGE: inserted and updated are what its commit counted
    header = "customer_id,name,email,country,segment,updated_at\n"
    land(
        settings, "customers", "2026/11/01/c.csv", header + "cus-000001,Ana,a@example.com,DE,smb,2026-11-01T00:00:00Z\n"
    )
    ingest_and_promote(lake, embedded, customers)
    land(
        settings,
        "customers",
        "2026/11/02/c.csv",
        header
        + "cus-000001,Ana,a@example.com,DE,enterprise,2026-11-02T00:00:00Z\n"
        + "cus-000002,Ben,b@example.com,US,consumer,2026-11-02T00:00:00Z\n",
    )
    _killed_before_the_quality_append(lake, embedded, customers)
    ingest_and_promote(lake, embedded, customers)
    merged = _figures(lake, "customers", "1")
    assert (merged[("landed", None)], merged[("inserted", None)], merged[("updated", None)]) == (2, 1, 1)
    assert merged[("redeliveries", None)] == 0
