"""What the landing sensor asks for: one run per landed object, and only for objects raw has not taken.

Run keys are `<object key>@<ETag>` (locally the MD5 of the bytes, which is S3's ETag of a single-part
object), so a replayed event never makes a second run. Raw of a stream source is partitioned by landing
date (`YYYY-MM-DD` from the key); batch sources are not partitioned. One tag, `medallion/landing_key`,
names the object in the runs list (the ETag is in the run key). The runs are queued at priority -1
(`dagster/priority`): one run per object makes a long queue after a busy hour, and a materialization a
person asked for (the UI's "Materialize all", a backfill, `medallion materialize`) goes ahead of it
instead of waiting behind every object's run in the source's one-slot pool.
"""

from collections.abc import Iterable

import dagster as dg

from medallion_platform.contracts import Contract
from medallion_platform.defs.keys import is_partitioned, source_keys
from medallion_platform.ingestion.landing import landing_date
from medallion_platform.lake.lakehouse import Lakehouse

__all__ = ["LANDING_KEY_TAG", "LANDING_PRIORITY", "already_in_raw", "landing_run_request"]

LANDING_KEY_TAG = "medallion/landing_key"
LANDING_PRIORITY = "-1"
"""`dagster/priority` of the landing sensor's runs: below the default 0 of runs people ask for."""


def landing_run_request(contract: Contract, key: str, etag: str) -> dg.RunRequest:
    """The run that takes one landed object through raw into trusted (run key: object key + ETag)."""
    return dg.RunRequest(
        run_key=f"{key}@{etag}",
        asset_selection=source_keys(contract.name),
        partition_key=landing_date(key) if is_partitioned(contract) else None,
        tags={LANDING_KEY_TAG: key, "dagster/priority": LANDING_PRIORITY},
    )


def already_in_raw(lake: Lakehouse, dataset: str, keys: Iterable[str]) -> set[str]:
    """The `keys` that raw's ingest log lists as taken (raw takes each object key once): a run for them
    would change nothing, so the sensor does not ask for one (after `medallion demo`, a CLI run, …)."""
    wanted = set(keys)
    if not wanted:
        return set()
    log = lake.ingest_log(dataset).read(columns=["source_file"])  # small: one row per file, compacted nightly
    return set() if log is None else wanted & set(log.column("source_file").to_pylist())
