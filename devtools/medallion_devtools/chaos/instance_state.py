"""What a data directory's Dagster instance still holds or waits for once every `materialize` has ended."""

from pathlib import Path

__all__ = ["UNREADABLE", "stale_pool_slots"]

UNREADABLE = "instance unreadable"
"""How an entry starts when the instance itself cannot be opened (e.g. two writers created it at once)."""


def stale_pool_slots(data_dir: Path) -> list[str]:
    """Pool slots still claimed or waited for, as `<pool>: claimed|pending by run <id> (<status>) step <key>`.

    Called when no `materialize` of `data_dir` is running, so every entry is stale: a dead run that keeps a
    slot blocks every later run of that pool (issue 13), and a pending step nobody will run again shows a
    run that waited on a pool until it was killed."""
    import dagster as dg

    home = data_dir / ".dagster"
    if not (home / "dagster.yaml").exists():
        return []
    try:
        return _stale(dg.DagsterInstance.from_config(str(home)))
    except Exception as exc:  # a broken instance is itself a finding of the trial, never a crash of the harness
        return [f"{UNREADABLE}: {type(exc).__name__}: {exc}".splitlines()[0][:300]]


def _stale(opened) -> list[str]:
    stale = []
    with opened as instance:
        storage = instance.event_log_storage
        for pool in sorted(storage.get_concurrency_keys()):
            info = storage.get_concurrency_info(pool)
            for state, slots in (("claimed", info.claimed_slots), ("pending", info.pending_steps)):
                for slot in slots:
                    run = instance.get_run_by_id(slot.run_id)
                    status = run.status.value if run else "unknown run"
                    stale.append(f"{pool}: {state} by run {slot.run_id[:8]} ({status}) step {slot.step_key}")
    return stale
