"""The program is built once per session under Pulumi mocks; tests assert policy on the recording.

pulumi_aws is imported lazily (in the fixture and the test modules), after `pytest_configure` has
installed the warning filter below.
"""

import asyncio
from typing import TYPE_CHECKING

import pytest

from infra_pulumi.config import InfraConfig
from medallion_tests.infra.helpers import make_config, make_registered_config

if TYPE_CHECKING:
    from infra_pulumi.mocks import Recording


def pytest_configure(config: pytest.Config) -> None:
    """pulumi-aws warns about its own deprecated V2 classes on import; not ours to fix."""
    config.addinivalue_line("filterwarnings", "ignore:.*has been deprecated in favor of:DeprecationWarning")


@pytest.fixture(scope="session", autouse=True)
def event_loop_for_pulumi() -> None:
    """Pulumi's mocks run on the thread's event loop; an earlier test's `asyncio.run` (Dagster's automation
    evaluation, for one) leaves the main thread without one. Autouse at session scope: set up before the
    session's `recording`."""
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


@pytest.fixture(scope="session")
def config() -> InfraConfig:
    """The test stack's config, built in the test (mocks cannot read Pulumi.<stack>.yaml)."""
    return make_config()


@pytest.fixture(scope="session")
def recording(config: InfraConfig) -> "Recording":
    """The whole program, built once per session."""
    from infra_pulumi.mocks import record_program

    return record_program(config)


@pytest.fixture(scope="session")
def registered_config() -> InfraConfig:
    """The test stack with `databricks.register` on."""
    return make_registered_config()


@pytest.fixture(scope="session")
def registered(registered_config: InfraConfig) -> "Recording":
    """The whole program with the Databricks registration, built once per session."""
    from infra_pulumi.mocks import record_program

    return record_program(registered_config)
