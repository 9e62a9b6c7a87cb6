"""What Dagster itself costs: loading the code location, validating it, and running trivial assets.

Import and validate run as fresh interpreters, as a deployment or CI would; the materializations run
in-process (the in-process executor) on a test instance, after one warm-up run.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from medallion_devtools.bench.measure import measured, peak_rss_mb

__all__ = ["ASSETS", "dagster_overhead"]

ASSETS = 10
_LOAD = (
    "import time; t = time.perf_counter(); import medallion_platform.definitions as d; "
    "d.defs.resolve_asset_graph(); print(time.perf_counter() - t)"
)


def _trivial_assets(count: int, compute: list[float]) -> list:
    import dagster as dg

    def make(i: int):
        deps = [dg.AssetKey(["bench", f"trivial_{i - 1}"])] if i else []

        @dg.asset(key=["bench", f"trivial_{i}"], deps=deps)
        def trivial() -> int:
            """Trivial compute: the overhead is all Dagster's."""
            t = time.perf_counter()
            value = i * 2
            compute.append(time.perf_counter() - t)
            return value

        return trivial

    return [make(i) for i in range(count)]


def _materialize(count: int, instance) -> tuple[float, float]:
    import dagster as dg

    compute: list[float] = []
    assets = _trivial_assets(count, compute)
    t = time.perf_counter()
    result = dg.materialize(assets, instance=instance)
    wall = time.perf_counter() - t
    if not result.success:
        raise RuntimeError("trivial materialization failed")
    return wall, sum(compute)


def dagster_overhead(repeats: int = 3) -> dict:
    """Definitions import + load, `dagster definitions validate`, and per-asset run overhead."""
    loads = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", _LOAD], capture_output=True, text=True, check=True)
        loads.append(float(out.stdout.strip().splitlines()[-1]))

    dagster = Path(sys.executable).parent / "dagster"
    validates = []
    with tempfile.TemporaryDirectory(prefix="medallion-bench-") as tmp:
        workspace = Path(tmp) / "workspace.yaml"
        workspace.write_text(
            "load_from:\n  - python_module:\n      module_name: medallion_platform.definitions\n"
            "      location_name: medallion\n"
        )
        for _ in range(2):
            t = time.perf_counter()
            subprocess.run(
                [str(dagster), "definitions", "validate", "-w", str(workspace)],
                capture_output=True,
                check=True,
                cwd=tmp,
                env={**os.environ, "DAGSTER_HOME": tmp},
            )
            validates.append(time.perf_counter() - t)

    import dagster as dg

    with (
        measured() as span,
        tempfile.TemporaryDirectory(prefix="medallion-bench-") as tmp,
        dg.instance_for_test(temp_dir=tmp) as instance,
    ):
        first, _ = _materialize(1, instance)  # warm-up: lazy imports, storage set-up
        one, _ = _materialize(1, instance)
        many, compute = _materialize(ASSETS, instance)
    return {
        **span.as_dict(),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "definitions_load_s": [round(x, 4) for x in loads],
        "definitions_load_median_s": round(statistics.median(loads), 4),
        "validate_s": [round(x, 4) for x in validates],
        "validate_median_s": round(statistics.median(validates), 4),
        "first_materialization_s": round(first, 4),
        "one_asset_run_s": round(one, 4),
        "assets": ASSETS,
        "many_assets_run_s": round(many, 4),
        "trivial_compute_s": round(compute, 6),
        "overhead_per_asset_ms": round((many - compute) / ASSETS * 1000, 1),
        "marginal_per_asset_ms": round((many - one) / (ASSETS - 1) * 1000, 1),
    }
