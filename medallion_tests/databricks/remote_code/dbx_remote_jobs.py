"""Jobs whose ops run on the Databricks stand-in through the real `databricks_pyspark_step_launcher`.

This folder is the step launcher's `local_pipeline_package_path`: zipped, uploaded to DBFS, and imported
by the remote driver, so it holds only what both sides need (no Spark: these are wire tests).
"""

import time

import dagster as dg
from dagster_databricks import databricks_pyspark_step_launcher

_remote = {"required_resource_keys": {"step_launcher"}}


@dg.op(**_remote)
def remote_answer(context: dg.OpExecutionContext) -> int:
    """Runs on the stand-in; logs where it ran."""
    context.log.info("remote answer computed on the stand-in")
    print("hello from the remote driver")
    return 42


@dg.op
def local_double(value: int) -> int:
    """Runs here, on what the remote op returned."""
    return value * 2


@dg.op(**_remote)
def remote_failure() -> int:
    """Fails on the stand-in."""
    raise ValueError("remote boom: raised on the Databricks stand-in")


@dg.op(**_remote)
def remote_sleep() -> int:
    """Runs (far) longer than any test waits."""
    print("sleeping", flush=True)
    time.sleep(600)
    return 0


# Outputs go where both sides see them: the remote step runs with its own (ephemeral) instance, so the
# default IO manager's instance-relative folder would differ; `base_dir` comes from the run config.
_job = {
    "resource_defs": {
        "step_launcher": databricks_pyspark_step_launcher,
        "io_manager": dg.FilesystemIOManager.configure_at_launch(),
    },
    "executor_def": dg.in_process_executor,
}


@dg.job(**_job)
def answer_job() -> None:
    """A remote op, then a local one consuming its output."""
    local_double(remote_answer())


@dg.job(**_job)
def failure_job() -> None:
    """A remote op that raises."""
    remote_failure()


@dg.job(**_job)
def sleep_job() -> None:
    """A remote op that would hang."""
    remote_sleep()
