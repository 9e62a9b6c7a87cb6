"""One landing corpus and its uninterrupted reference run, shared by the reliability trials."""

import pytest
from medallion_devtools.chaos.trials import Reference, prepare_reference

ORDERS = 400
"""Small enough for CI (each `materialize` takes seconds), large enough for several landing dates and commits."""


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Reference:
    """The corpus and the reference run every trial is compared with (it must itself succeed)."""
    ref = prepare_reference(tmp_path_factory.mktemp("reliability"), orders=ORDERS, seed=7)
    assert ref.ok, f"reference run: rc {ref.outcome.returncode}: {ref.outcome.error}"
    return ref
