"""The embedded engine's frames over DuckDB views: what SQLFrame's own reader would build, for less."""

from collections.abc import Iterator

import pytest

from medallion_platform.engine.embedded import EmbeddedEngine


@pytest.fixture
def engine() -> Iterator[EmbeddedEngine]:
    engine = EmbeddedEngine()
    yield engine
    engine.close()


# plain names, some of them SQL keywords
COLUMNS = "1 AS id, 'a' AS \"order\", DATE '2026-11-01' AS \"date\", 2.5::DECIMAL(10, 2) AS amount"


def test_a_view_s_frame_is_the_frame_sqlframe_s_reader_builds(engine: EmbeddedEngine):
    """`_table` builds each column list's SELECT once; a frame over another view of the same columns is the
    one `session.table` gives, step for step."""
    first, second = engine.sql(f"SELECT {COLUMNS}", "one"), engine.sql(f"SELECT {COLUMNS}", "two")
    view = engine._frame_views[id(second)][1]
    assert view != engine._frame_views[id(first)][1]
    by_reader = engine.session.table(view)
    F = engine.F

    def steps(frame):
        return frame.where(F.col("id") > 0).select("order", "date", (F.col("amount") * 2).alias("twice"))

    assert steps(second).sql(dialect="duckdb", optimize=False) == steps(by_reader).sql(dialect="duckdb", optimize=False)
    assert second.columns == by_reader.columns == ["id", "order", "date", "amount"]
    (row,) = engine.to_arrow(steps(second)).to_pylist()
    assert (row["order"], str(row["date"]), str(row["twice"])) == ("a", "2026-11-01", "5.00")


def test_a_view_as_it_is_runs_as_select_star(engine: EmbeddedEngine):
    frame = engine.sql(f"SELECT {COLUMNS}", "one")
    assert engine.sql_text(frame) == f'SELECT * FROM "{engine._frame_views[id(frame)][1]}"'
    assert engine.to_arrow(frame).column_names == ["id", "order", "date", "amount"]
    derived = frame.select("id")  # a step on it: SQLFrame writes the SQL
    assert "SELECT *" not in engine.sql_text(derived)
    assert engine.to_arrow(derived).column_names == ["id"]
