"""Two `materialize` at once on one data directory: no crash, no double write, a clear wait or failure."""

import pytest
from medallion_devtools.chaos.trials import writers_trial

pytestmark = pytest.mark.reliability


@pytest.mark.parametrize("existing", [False, True], ids=["fresh data directory", "existing instance"])
def test_two_writers_at_once_neither_crashes_nor_double_writes(reference, existing):
    result = writers_trial(reference, existing=existing)
    for n, outcome in enumerate(result.outcomes, 1):
        hung = outcome.hung
        assert not hung, (
            f"writer {n} hung (killed after {2 * reference.rerun_timeout:.0f} s); pools: {result.stale_slots}"
        )
    assert result.instance_crashes == 0, [o.error for o in result.outcomes] + result.stale_slots
    assert any(o.ok for o in result.outcomes), [o.error for o in result.outcomes]
    assert result.unclear_failures == 0, "a writer failed with a traceback: " + "; ".join(
        o.last_line for o in result.outcomes if not o.ok
    )
    assert result.comparison.duplicated_rows == 0, result.comparison.summary()
    assert result.comparison.differing == [], result.comparison.summary()
