"""The landing sensor: new landing objects become runs of their source step, each object exactly once.

A small dispatcher over two flavours, chosen at every evaluation from the lakehouse resource's settings:
the SQS consumer (`landing_queue.py`: queue URL set, env not `local`) and the folder lister
(`landing_folders.py`). Both ask for one run per object (`landing_requests.py`) and skip objects raw
already holds, so the sensor's first tick after `medallion demo` or a CLI run requests nothing.
"""

import dagster as dg

from medallion_platform.contracts import Contract, load_contracts
from medallion_platform.defs.keys import source_keys
from medallion_platform.defs.landing.folders import decode_cursor, encode_cursor, folder_tick
from medallion_platform.defs.landing.queue import QueueOptions, queue_tick
from medallion_platform.defs.landing.requests import landing_run_request
from medallion_platform.defs.resources import LakehouseResource

__all__ = ["build_landing_sensor", "decode_cursor", "encode_cursor", "landing_run_request"]


def build_landing_sensor(
    contracts: dict[str, Contract] | None = None,
    *,
    name: str = "landing_sensor",
    minimum_interval_seconds: int = 30,
    queue: QueueOptions | None = None,
    retention_days: int = 7,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """The landing sensor over `contracts` (default: all), targeting each source's raw, trusted and
    quarantine assets: one run parses a landed object once and promotes it in the same pass."""
    contracts = contracts if contracts is not None else load_contracts()
    keys = [key for name in sorted(contracts) for key in source_keys(name)]
    options = queue or QueueOptions()

    @dg.sensor(
        name=name,
        asset_selection=keys,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="New landing objects (SQS events on AWS, the landing folders locally) → source step runs.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource) -> dg.SensorResult:
        lake = lakehouse.lake()
        if lake.settings.landing_queue_url and lake.settings.env != "local":
            return queue_tick(context, lake, contracts, options)
        return folder_tick(context, lake, contracts, retention_days)

    return landing_sensor
