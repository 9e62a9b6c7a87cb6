"""The lakehouse: every Delta table of a deployment, handed out by zone.

The one place that turns a zone and a table name into a `DeltaTableIO` with the deployment's storage
options, so a table opened by an asset, the CLI, the maintenance job or the catalog is the same table
and the same three-level catalog name (`Settings.table_name`; the ingest log, which no catalog lists, has none).
No table keeps a change data feed: the platform finds changes from the Delta log (`DeltaTableIO.changes_since`),
and Spark engines without one (Sail) cannot write to a table that has it.
"""

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

from medallion_platform.lake.delta_io import DeltaTableIO
from medallion_platform.settings import Settings

__all__ = [
    "ERASURE_LEDGER",
    "HISTORY_SUFFIX",
    "QUALITY_SUFFIX",
    "QUARANTINE_SUFFIX",
    "REJECTED_SUFFIX",
    "REPLAYS_SUFFIX",
    "Lakehouse",
]

QUARANTINE_SUFFIX = "_quarantine"
"""A dataset's quarantine table is `trusted/<dataset>_quarantine`."""

HISTORY_SUFFIX = "_history"
"""A dataset's history (slowly changing dimension type 2) is `trusted/<dataset>_history`."""
QUALITY_SUFFIX = "_quality"
"""A dataset's quality figures, one row per figure per promoted batch, are `trusted/<dataset>_quality`."""

REJECTED_SUFFIX = "_rejected"
"""A dataset's rejected landing objects are `raw/<dataset>_rejected` (catalog `<catalog>.raw.<dataset>_rejected`)."""


REPLAYS_SUFFIX = "_quarantine_replays"
"""The quarantine rows a replay released: `trusted/<dataset>_quarantine_replays`."""

ERASURE_LEDGER = "erasure_ledger"
"""The erasure receipts: `raw/erasure_ledger` (catalog `<catalog>.raw.erasure_ledger`), owned by the platform."""


class Lakehouse:
    """The tables of one deployment (its `Settings`), by zone."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._held: dict[tuple[str, str, bool], DeltaTableIO] | None = None
        self._holding = ExitStack()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Within the block each table is handed out as one object whose log is read at its first question and
        kept (`DeltaTableIO.opened`), moved forward by that object's own commits only: a refresh plans from one
        snapshot of every table it reads, and reads each log once instead of at every question. Re-entrant."""
        if self._held is not None:
            yield
            return
        self._held = {}
        try:
            with self._holding:
                yield
        finally:
            self._held = None

    def raw(self, dataset: str) -> DeltaTableIO:
        """`raw/<dataset>`: landing records as they arrived, one row per record."""
        return self._open("raw", dataset)

    def ingest_log(self, dataset: str) -> DeltaTableIO:
        """The files each raw batch took (one small append per batch; the maintenance job compacts it)."""
        return self._open("raw", f"_ingest_log/{dataset}", listed=False)

    def rejected(self, dataset: str) -> DeltaTableIO:
        """`raw/<dataset>_rejected`: landing objects raw could not take, each recorded once with the reason."""
        return self._open("raw", f"{dataset}{REJECTED_SUFFIX}")

    def trusted(self, dataset: str) -> DeltaTableIO:
        """`trusted/<dataset>`: the contract's rows, validated and deduplicated."""
        return self._open("trusted", dataset)

    def quarantine(self, dataset: str) -> DeltaTableIO:
        """`trusted/<dataset>_quarantine`: the rows the contract rejected, with the reason."""
        return self._open("trusted", f"{dataset}{QUARANTINE_SUFFIX}")

    def history(self, dataset: str) -> DeltaTableIO:
        """`trusted/<dataset>_history`: every version of each key, with when it held (a contract's `history`)."""
        return self._open("trusted", f"{dataset}{HISTORY_SUFFIX}")

    def quality(self, dataset: str) -> DeltaTableIO:
        """`trusted/<dataset>_quality`: each promoted batch's figures (`zones/quality.py`)."""
        return self._open("trusted", f"{dataset}{QUALITY_SUFFIX}")

    def erasure_ledger(self) -> DeltaTableIO:
        """`raw/erasure_ledger`: one row per completed erasure (`zones/erasure.py`), the receipt; append-only."""
        return self._open("raw", ERASURE_LEDGER)

    def replays(self, dataset: str) -> DeltaTableIO:
        """`trusted/<dataset>_quarantine_replays`: the quarantine rows a replay released (`zones/replay.py`)."""
        return self._open("trusted", f"{dataset}{REPLAYS_SUFFIX}")

    def refined(self, name: str) -> DeltaTableIO:
        """`refined/<name>`: a business table."""
        return self._open("refined", name)

    def for_key(self, path: Sequence[str]) -> DeltaTableIO:
        """The table of asset key path `[zone, name]`."""
        zone, name = path
        if zone == "raw":
            return self.raw(name)
        if zone == "trusted":
            if name.endswith(QUARANTINE_SUFFIX):
                return self.quarantine(name.removesuffix(QUARANTINE_SUFFIX))
            if name.endswith(QUALITY_SUFFIX):
                return self.quality(name.removesuffix(QUALITY_SUFFIX))
            return self.trusted(name)
        if zone == "refined":
            return self.refined(name)
        raise ValueError(f"no zone {zone!r} (asset key {'/'.join(path)}): the zones are raw, trusted and refined")

    def at(self, location: str) -> DeltaTableIO:
        """The table at a catalog entry's `location` (a URI inside one of the zones)."""
        return DeltaTableIO(location, storage_options=self.settings.storage_options)

    def _open(self, zone: str, name: str, *, listed: bool = True) -> DeltaTableIO:
        held = self._held.get((zone, name, listed)) if self._held is not None else None
        if held is not None:
            return held
        table = DeltaTableIO(
            self.settings.table_uri(zone, name),
            storage_options=self.settings.storage_options,
            name=self.settings.table_name(zone, name) if listed else None,
        )
        if self._held is not None:
            self._holding.enter_context(table.opened())
            self._held[(zone, name, listed)] = table
        return table
