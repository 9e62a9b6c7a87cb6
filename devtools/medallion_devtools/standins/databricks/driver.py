"""A task's driver process: `python -m medallion_devtools.standins.databricks.driver <spec.json>`.

Started by the stand-in (in its own session and process group, with `/dbfs` mounted, see `mount.py`),
it runs one `spark_python_task` or `notebook_task` the way a Databricks driver does: `dbutils`, `spark`
and `sc` as globals (`runtime.py`), the task's parameters as `sys.argv[1:]`, then
`runpy.run_path(file, run_name="__main__")`. The outcome goes to the spec's `outcome_file`
(`{error, error_trace}` or `{notebook_result}`), for `runs/get-output`; the exit status says success.
"""

import atexit
import json
import os
import runpy
import sys
import traceback
from pathlib import Path

from medallion_devtools.standins.databricks.runtime import DBUtils, LazySpark, NotebookExit

__all__ = ["main"]


def main(argv: list[str]) -> int:
    """Runs the task described by the spec file `argv[1]`; returns the exit status."""
    spec = json.loads(Path(argv[1]).read_text())
    outcome_file = Path(spec["outcome_file"])
    spark = LazySpark()
    spark.install_active_session_hook()
    init_globals = {
        "dbutils": DBUtils(widgets=spec.get("widgets", {}), secrets=spec.get("secrets", {})),
        **spark.globals(),
    }
    file = spec["file"]
    sys.argv = [file, *spec.get("parameters", [])]
    sys.path.insert(0, os.path.dirname(file))
    outcome: dict[str, str] = {}
    status = 0
    try:
        runpy.run_path(file, init_globals=init_globals, run_name="__main__")
    except NotebookExit as exc:
        outcome["notebook_result"] = exc.value
    except SystemExit as exc:
        if exc.code not in (None, 0):
            status = exc.code if isinstance(exc.code, int) else 1
            outcome = {"error": f"SystemExit: {exc.code}", "error_trace": traceback.format_exc()}
    except BaseException as exc:
        status = 1
        outcome = {
            "error": "".join(traceback.format_exception_only(exc)).strip(),
            "error_trace": traceback.format_exc(),
        }
        traceback.print_exc()
    finally:
        try:
            spark.stop()
        except Exception:  # a JVM that is already gone must not hide the task's own outcome
            traceback.print_exc()
    outcome_file.write_text(json.dumps(outcome))
    return status


if __name__ == "__main__":
    code = main(sys.argv)
    # The task is over when its script returns, as on Databricks: a thread it left running (a non-daemon
    # Pipes writer, a Spark callback) must not keep the run RUNNING, so exit without joining threads.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
