"""What a refined table declares: its inputs, schema, checks' figures and the functions that build it.

The declarations only: the table modules (`daily_revenue.py`, ...) import from here, the planning of a
refresh (`base.py`), the coverage record (`coverage.py`) and the Dagster checks (`defs/checks/refined.py`)
read them.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import pyarrow as pa

from medallion_platform.engine.base import Engine, Frame

__all__ = [
    "AMOUNT",
    "CURRENCIES",
    "MONEY",
    "PARTITION",
    "PLACED",
    "SIGNED_AMOUNT",
    "Build",
    "Combine",
    "RefinedTable",
    "RefreshMode",
    "Tally",
    "amount",
]

PARTITION = "event_date"
MONEY = pa.decimal128(18, 2)
"""Money in refined tables: decimal(18,2) on every engine."""
CURRENCIES = ("EUR", "USD", "GBP")
"""The currencies refined tables report a column for (the contracts allow exactly these)."""

AMOUNT = "CAST(quantity * unit_price AS DECIMAL(18, 2))"
"""An event's amount in SQL over the fact's rows, as `amount()` computes it in the builds."""
PLACED = "status = 'placed'"
SIGNED_AMOUNT = (
    f"CASE WHEN status = 'placed' THEN {AMOUNT} WHEN status IN ('cancelled', 'refunded') THEN -{AMOUNT} ELSE 0 END"
)
"""Placed amounts minus cancelled and refunded ones (net revenue)."""

RefreshMode = Literal["rebuild", "incremental", "unchanged"]
"""How a refresh brought a refined table up to date: rewrote it (or every date it was given), folded new
events in (into the whole table, or into at least one stored date), or found nothing new."""


class Build(Protocol):
    """Builds a refined table on `engine` from its inputs, passed by name (`order_events=`, `customers=`, ...)."""

    def __call__(self, engine: Engine, *args: Any, **inputs: Any) -> Frame: ...


class Combine(Protocol):
    """Folds `partial` (`build` over new events only) into `stored` (the table's rows), with the master
    data passed by name."""

    def __call__(self, engine: Engine, stored: Frame, partial: Frame, *args: Any, **master_data: Any) -> Frame: ...


@dataclass(frozen=True)
class Tally:
    """One figure a refined table must agree on with its fact input over the same dates: `refined` is an
    SQL aggregate over the refined rows (relation `r`), `fact` one over the fact's valid rows (`f`)."""

    name: str
    refined: str
    fact: str


@dataclass(frozen=True)
class RefinedTable:
    """A refined table: its trusted inputs, its schema and the PySpark-API function that builds it."""

    name: str
    description: str
    owner: str
    inputs: tuple[str, ...]
    """Trusted tables it reads; the fact input is read only for the partitions being built."""
    schema: pa.Schema
    build: Build
    key: tuple[str, ...] = ()
    """Columns unique per row (per partition when partitioned): the `key_unique` check."""
    columns: Mapping[str, str] = field(default_factory=dict)
    """A description of every column of `schema` (the UI's column schema and the catalog)."""
    non_negative: tuple[str, ...] = ()
    """Amount columns that are never negative: the `amounts_non_negative` check."""
    tallies: tuple[Tally, ...] = ()
    """Figures reconciled with the fact input for the dates built: the `reconciles_with_fact` check."""
    fact: str = "order_events"
    """The input whose rows it aggregates (one of `inputs`): its event dates are the table's partitions,
    and its new rows are what an incremental refresh folds in. The other inputs are master data."""
    partitioned: bool = True
    """Partitioned by `event_date`: a run rewrites exactly the dates it is given."""
    combine: Combine | None = None
    """Folds `build` over new events into the stored rows (`combine(engine, stored, partial, **master_data)`),
    so a refresh costs what the new events cost: the whole table when unpartitioned, the stored dates the
    new events fall on when partitioned. Only for measures that add up (sums, counts, min, max)."""
    counted_once: tuple[str, ...] = ()
    """Fact columns whose distinct values a measure counts per event date (`countDistinct(order_id)` of a
    status: `("status", "order_id")`). Such a count adds up only when the new rows bring no value already
    counted in the stored date, so a date whose new rows repeat one is rebuilt instead of folded."""

    @property
    def master_data(self) -> tuple[str, ...]:
        """The inputs other than the fact (read whole)."""
        return tuple(name for name in self.inputs if name != self.fact)


def amount(F: Any) -> Any:
    """quantity x unit_price as decimal(18,2) on every engine."""
    return (F.col("quantity") * F.col("unit_price")).cast("decimal(18,2)")
