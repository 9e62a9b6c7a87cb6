"""kill -9 of `materialize` at several points, each followed by a bounded rerun that must restore the lake."""

import pytest
from medallion_devtools.chaos.trials import KILL_POINTS, kill_trial

pytestmark = pytest.mark.reliability


@pytest.mark.parametrize("trial", range(3), ids=[p.label for p in KILL_POINTS[:3]])
def test_a_rerun_after_kill_9_restores_every_table(reference, trial):
    result = kill_trial(reference, trial, seed=7)
    rerun, comparison = result.rerun, result.comparison
    assert result.killed, f"the run ended before the kill point ({result.point}): the trial tested nothing"
    hung, ok = rerun.hung, rerun.ok
    assert not hung, f"the rerun after the kill hung (killed after {rerun.seconds:.0f} s); pools: {result.stale_slots}"
    assert ok, f"the rerun failed: rc {rerun.returncode}: {rerun.error}"
    corrupt, duplicated, lost, differing = (
        comparison.corrupt,
        comparison.duplicated_rows,
        comparison.lost_rows,
        comparison.differing,
    )
    assert corrupt == [], comparison.summary()
    assert duplicated == 0, comparison.summary()
    assert lost == 0, comparison.summary()
    assert differing == [], comparison.summary()
