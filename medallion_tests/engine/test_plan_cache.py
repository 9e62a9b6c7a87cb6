"""The embedded engine builds a template's plan once and runs its SQL over later inputs of the same shape."""

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from medallion_platform.engine.embedded import EmbeddedEngine
from medallion_platform.engine.plans import PlanCache, Template, plan_cache_dir
from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.lake.lakehouse import Lakehouse
from medallion_platform.settings import Settings
from medallion_platform.zones.refined.base import build_refined, refresh_refined
from medallion_tests.helpers import event
from medallion_tests.zones.test_refined import TABLES, _day_one, _events

BUILT: list[str] = []


def _revenue(engine, events, prices):
    """Revenue per product: a join, a checkpoint (a view the template creates) and an aggregate."""
    BUILT.append("revenue")
    F = engine.F
    joined = events.join(prices, on="product", how="left").select(
        "product", (F.col("qty") * F.coalesce(F.col("price"), F.lit(0))).alias("amount")
    )
    return engine.checkpoint(joined).groupBy("product").agg(F.sum("amount").alias("revenue"))


REVENUE = Template("tests/revenue", _revenue)


def _other_revenue(engine, events, prices):
    return _revenue(engine, events, prices).select("product", (engine.F.col("revenue") * 2).alias("revenue"))


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[tuple[EmbeddedEngine, EmbeddedEngine]]:
    """Two engines on one plan cache folder, as two processes of a run would be."""
    first, second = EmbeddedEngine(), EmbeddedEngine()
    first.plans, second.plans = PlanCache(tmp_path / "plans"), PlanCache(tmp_path / "plans")
    yield first, second
    first.close()
    second.close()


def _inputs(engine: EmbeddedEngine, events: list[tuple[str, int]], extra: bool = False):
    columns = {"product": [p for p, _ in events], "qty": [q for _, q in events]}
    if extra:
        columns["note"] = ["x"] * len(events)
    prices = pa.table({"product": ["a", "b"], "price": [Decimal("2.50"), Decimal("4.00")]})
    return {"events": engine.dataframe(pa.table(columns), "events"), "prices": engine.dataframe(prices, "prices")}


def _rows(engine: EmbeddedEngine, frame) -> dict[str, Decimal]:
    return {r["product"]: r["revenue"] for r in engine.to_arrow(frame).to_pylist()}


def test_a_second_call_runs_the_recorded_plan_over_its_own_inputs(engines):
    first, second = engines
    BUILT.clear()
    assert _rows(first, first.planned(REVENUE, **_inputs(first, [("a", 2), ("b", 1)]))) == {
        "a": Decimal("5.00"),
        "b": Decimal("4.00"),
    }
    first.close()  # the first call's views (inputs and checkpoint) are gone: the second must name its own
    planned = second.planned(REVENUE, **_inputs(second, [("a", 10), ("c", 3)]))
    third = EmbeddedEngine()  # another engine of the process, planning from the same entry before it runs
    third.plans = second.plans
    try:
        assert _rows(third, third.planned(REVENUE, **_inputs(third, [("b", 1)]))) == {"b": Decimal("4.00")}
    finally:
        third.close()
    rows = _rows(second, planned)
    assert rows == {"a": Decimal("25.00"), "c": Decimal("0.00")}
    assert BUILT == ["revenue"]  # built once
    assert (first.plans.recorded, second.plans.hits) == (1, 2)
    # the same rows as building the plan anew
    second.plans = None
    assert _rows(second, second.planned(REVENUE, **_inputs(second, [("a", 10), ("c", 3)]))) == rows


def test_other_columns_or_other_code_are_another_plan(engines):
    first, second = engines
    BUILT.clear()
    first.planned(REVENUE, **_inputs(first, [("a", 1)]))
    second.planned(REVENUE, **_inputs(second, [("a", 1)], extra=True))  # one more input column
    assert BUILT == ["revenue", "revenue"]
    doubled = Template("tests/revenue", _other_revenue)  # the same name, other code
    assert _rows(second, second.planned(doubled, **_inputs(second, [("a", 1)]))) == {"a": Decimal("5.00")}
    assert len(list(second.plans.directory.glob("*.json"))) == 3


def test_an_unreadable_entry_is_built_again(engines):
    first, second = engines
    first.planned(REVENUE, **_inputs(first, [("a", 1)]))
    (entry,) = first.plans.directory.glob("*.json")
    entry.write_text('{"inputs": {"events": ')
    BUILT.clear()
    assert _rows(second, second.planned(REVENUE, **_inputs(second, [("a", 4)]))) == {"a": Decimal("10.00")}
    assert BUILT == ["revenue"]
    assert set(json.loads(entry.read_text())) == {"inputs", "views", "sql", "columns"}


def test_a_template_reading_data_is_not_kept(engines):
    first, _ = engines

    def reads(engine, events):
        extra = engine.dataframe(pa.table({"product": ["z"], "qty": [1]}), "extra")
        return events.union(extra)

    rows = first.to_arrow(first.planned(Template("tests/reads", reads), events=_inputs(first, [("a", 1)])["events"]))
    assert sorted(rows.column("product").to_pylist()) == ["a", "z"]
    assert list(first.plans.directory.glob("*.json")) == []


def test_the_setting_names_the_folder_or_turns_the_cache_off(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert plan_cache_dir(None) == tmp_path / "xdg" / "medallion" / "plans"
    assert plan_cache_dir(str(tmp_path / "mine")) == tmp_path / "mine"
    assert plan_cache_dir("off") is None and plan_cache_dir(" OFF ") is None
    monkeypatch.delenv("XDG_CACHE_HOME")

    def homeless() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", homeless)  # a container user without a home directory
    assert plan_cache_dir(None) is None


def _late_fold(settings: Settings, plans: PlanCache | None) -> list[dict]:
    """Day one refreshed, then late events folded into it, with `plans` as the engine's plan cache."""
    engine = EmbeddedEngine()
    engine.plans = plans
    lake = Lakehouse(settings)
    try:
        from medallion_platform.contracts import load_contracts

        contracts = load_contracts()
        _day_one(settings, contracts, engine)
        for table in TABLES.values():
            refresh_refined(lake, engine, table, ["2026-11-01"] if table.partitioned else None)
        _events(
            settings,
            contracts,
            engine,
            "2026/11/03/10/late",
            event(30, order_id="ord-00000030", quantity=4, event_time="2026-11-01T20:00:00Z"),
            event(31, order_id="ord-00000001", status="cancelled", event_time="2026-11-01T21:00:00Z"),
        )
        stored = []
        for table in TABLES.values():
            refreshed = refresh_refined(lake, engine, table, ["2026-11-01"] if table.partitioned else None)
            assert refreshed.mode == "incremental", table.name
            rows = DeltaTableIO(lake.refined(table.name).uri).read()
            assert rows is not None
            rebuilt = build_refined(lake, engine, table, ["2026-11-01"] if table.partitioned else None)
            key = sorted(str(sorted(r.items())) for r in rows.to_pylist())
            assert key == sorted(str(sorted(r.items())) for r in rebuilt.to_pylist()), table.name
            stored.append({"table": table.name, "rows": key})
        return stored
    finally:
        engine.close()


def test_refined_tables_fold_the_same_rows_from_a_recorded_plan(tmp_path):
    """The refined refreshes (rebuilds and folds) give the same rows with no cache, building every plan
    into an empty one, and running every plan from it."""
    plans = PlanCache(tmp_path / "plans")
    lakes = [Settings.from_env({}, data_dir=tmp_path / name) for name in ("none", "cold", "warm")]
    without = _late_fold(lakes[0], None)
    cold = _late_fold(lakes[1], plans)
    recorded, hits = plans.recorded, plans.hits
    warm = _late_fold(lakes[2], plans)
    assert without == cold == warm
    assert recorded >= 2 * len(TABLES)  # a rebuild and a fold per table at least
    assert (plans.recorded, plans.hits - hits) == (recorded, recorded + hits)  # nothing built the second time
