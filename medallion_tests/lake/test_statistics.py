"""Withheld columns never enter the Delta log: no write route (the bounded append, delta-rs's MERGE, partition
overwrite and whole-table overwrite) records their values as file statistics, on a new table or on one that
existed before, while every other column keeps the statistics readers prune on."""

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa

from medallion_platform.lake.delta_io import STATS_COLUMNS, DeltaTableIO

SECRET = "Ada Lovelace"


def _rows(day: int, name: str = SECRET) -> pa.Table:
    return pa.table(
        {
            "customer_id": ["cus-1", "cus-2"],
            "name": [name, "Grace Hopper"],
            "amount": [10, 20],
            "day": [dt.date(2026, 12, day)] * 2,
        }
    )


def _log(uri: Path) -> list[dict]:
    """Every action of every commit in the table's log."""
    return [
        json.loads(line)
        for path in sorted((uri / "_delta_log").glob("*.json"))
        for line in path.read_text().splitlines()
    ]


def _stats(uri: Path) -> list[dict]:
    return [json.loads(a["add"]["stats"]) for a in _log(uri) if "add" in a and a["add"].get("stats")]


def _write_every_way(table: DeltaTableIO) -> None:
    table.append(_rows(1), partition_by=["day"])
    table.merge(_rows(1, "Ada King"), keys=["customer_id"], partition_column="day", when_matched="update")
    table.overwrite_partitions(_rows(2), partition_column="day", values=[dt.date(2026, 12, 2)])


def test_a_new_table_keeps_no_statistics_of_withheld_columns_whichever_writer_writes(tmp_path):
    table = DeltaTableIO(str(tmp_path / "customers"))
    table.withhold_statistics(["name", "customer_id"], _rows(1).schema)
    _write_every_way(table)

    stats = _stats(tmp_path / "customers")
    assert len(stats) >= 3
    for stat in stats:
        assert set(stat["minValues"]) == set(stat["maxValues"]) == {"amount"}  # pruning on the rest still works
    assert SECRET.encode() not in b"".join(p.read_bytes() for p in (tmp_path / "customers" / "_delta_log").iterdir())
    assert table.stats_columns() == ["amount", "day"]


def test_an_existing_table_is_switched_in_a_commit_of_its_own_and_a_new_column_keeps_its_statistics(tmp_path):
    uri = tmp_path / "customers"
    table = DeltaTableIO(str(uri))
    table.append(_rows(1), partition_by=["day"])
    assert SECRET in _stats(uri)[0]["minValues"].values()  # as every table was before
    version = table.version()

    table.withhold_statistics(["name"], _rows(1).schema)
    assert table.version() == version + 1
    table.withhold_statistics(["name"], _rows(1).schema)  # already so: no commit
    assert table.version() == version + 1
    table.append(_rows(3, "Ada Byron"), partition_by=["day"])
    assert set(_stats(uri)[-1]["minValues"]) == {"customer_id", "amount"}

    wider = _rows(4).append_column("segment", pa.array(["gold", "silver"]))
    table.withhold_statistics(["name"], wider.schema)  # a column added since: indexed like the rest
    table.add_columns([wider.schema.field("segment")])
    table.append(wider, partition_by=["day"])
    assert set(_stats(uri)[-1]["minValues"]) == {"customer_id", "amount", "segment"}
    assert table.table().metadata().configuration[STATS_COLUMNS] == "customer_id,amount,day,segment"


def test_whole_table_overwrite_keeps_the_setting(tmp_path):
    uri = tmp_path / "small"
    table = DeltaTableIO(str(uri))
    table.withhold_statistics(["name"], _rows(1).schema)
    table.overwrite(_rows(1))
    table.overwrite(_rows(2, "Ada Byron"))
    assert [set(s["minValues"]) for s in _stats(uri)] == [{"customer_id", "amount", "day"}] * 2
