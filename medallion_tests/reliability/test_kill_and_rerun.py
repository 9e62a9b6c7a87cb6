"""kill -9 of `materialize` at several points, each followed by a bounded rerun that must restore the lake."""

import pytest

from medallion_platform.reliability.trials import KILL_POINTS, kill_trial

pytestmark = pytest.mark.reliability


@pytest.mark.parametrize("trial", range(3), ids=[p.label for p in KILL_POINTS[:3]])
def test_a_rerun_after_kill_9_restores_every_table(reference, trial):
    result = kill_trial(reference, trial, seed=7)
    assert result.killed, f"the run ended before the kill point ({result.point}): the trial tested nothing"
    assert not result.rerun.hung, (
        f"the rerun after the kill hung (killed after {reference.rerun_timeout:.0f} s); pools: {result.stale_slots}"
    )
    assert result.rerun.ok, f"the rerun failed: rc {result.rerun.returncode}: {result.rerun.last_line}"
    comparison = result.comparison
    assert comparison.corrupt == [], comparison.summary()
    assert comparison.duplicated_rows == 0, comparison.summary()
    assert comparison.lost_rows == 0, comparison.summary()
    assert comparison.differing == [], comparison.summary()
