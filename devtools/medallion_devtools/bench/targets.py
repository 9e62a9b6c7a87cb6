"""Ratios between phases, the row reconciliation across them, and the targets the project set itself.

Ratios matter more than seconds on a shared machine: the targets are stated as ratios wherever
the issue allows (pipeline/parse, incremental/full, Spark/embedded).
"""

import re

__all__ = ["RSS_LIMIT_MB", "TARGETS", "evaluate", "landings", "pipeline_runs", "ratios", "reconciliation"]

RSS_LIMIT_MB = 1536.0
_RUN = re.compile(r"^(pipeline|double|incremental_1pct_\d+|incremental_after_double_\d+)$")


def pipeline_runs(phases: dict) -> list[str]:
    """Every pipeline run (the numbered 1 % runs, not their medians), in order."""
    return [name for name in phases if _RUN.match(name)]


def landings(phases: dict) -> list[str]:
    return [name for name in phases if name == "generate" or name.startswith("land_")]


# name: (what, comparison, limit)
TARGETS: dict[str, tuple[str, str, float]] = {
    "pipeline_vs_parse": ("full pipeline wall / parse-limit wall", "<=", 3.0),
    "peak_rss_mb": ("peak RSS of any pipeline phase (MB)", "<=", RSS_LIMIT_MB),
    "rss_growth_vs_baseline": ("pipeline peak RSS / baseline run's", "<=", 1.10),
    "spark_vs_embedded_with_start": ("local Spark / embedded, session start included", ">=", 5.0),
    "incremental_vs_full": ("1 % incremental wall (median of 3) / full pipeline wall", "<=", 0.05),
    "incremental_change_after_double": ("|incremental after doubling / incremental - 1|", "<", 0.20),
    "definitions_load_s": ("import + load definitions (s, median)", "<=", 1.5),
    "definitions_validate_s": ("dagster definitions validate (s, median)", "<=", 3.0),
    "orchestration_overhead_ms": ("per-asset overhead, in-process executor (ms)", "<=", 100.0),
}


def _div(a: float | None, b: float | None) -> float | None:
    return round(a / b, 4) if a is not None and b else None


def _wall(phases: dict, name: str) -> float | None:
    return phases.get(name, {}).get("wall_s")


def ratios(phases: dict) -> dict[str, float | None]:
    """Every ratio the report quotes; None where a phase did not run (e.g. `--no-spark`)."""
    spark: dict | None = phases.get("spark")
    embedded: dict = phases.get("embedded_same_transforms") or {}
    spark_start = spark["session_start"]["wall_s"] if spark else None
    embedded_start = embedded["session_start"]["wall_s"] if embedded else None
    incremental = _wall(phases, "incremental_1pct")
    after = _wall(phases, "incremental_after_double")
    return {
        "pipeline_vs_parse": _div(_wall(phases, "pipeline"), _wall(phases, "parse_limit")),
        "pipeline_cpu_vs_parse_cpu": _div(phases["pipeline"]["cpu_s"], phases["parse_limit"]["cpu_s"]),
        "incremental_vs_full": _div(incremental, _wall(phases, "pipeline")),
        "incremental_after_double_vs_full": _div(after, _wall(phases, "pipeline")),
        "incremental_after_double_vs_incremental": _div(after, incremental),
        "double_vs_full": _div(_wall(phases, "double"), _wall(phases, "pipeline")),
        "spark_vs_embedded": _div(spark["wall_s"], embedded["wall_s"]) if spark else None,
        "spark_vs_embedded_with_start": (
            _div(spark["wall_s"] + spark_start, embedded["wall_s"] + embedded_start) if spark else None
        ),
        "peak_rss_pipeline_mb": phases["pipeline"]["peak_rss_mb"],
        "peak_rss_max_mb": max(phases[p]["peak_rss_mb"] for p in pipeline_runs(phases)),
        # only when `--engine databricks-local` ran it
        **(
            {"databricks_local_vs_embedded": _div(phases["databricks_local"]["wall_s"], embedded["wall_s"])}
            if "databricks_local" in phases
            else {}
        ),
    }


def reconciliation(phases: dict) -> dict:
    """Landed lines = trusted rows + updates + duplicates + quarantined, over every batch."""
    landed = sum(phases[p]["lines"] for p in landings(phases))
    counts = [phases[p]["counts"] for p in pipeline_runs(phases)]
    total = {k: sum(c[k] for c in counts) for k in ("raw_rows", "inserted", "updated", "duplicates", "quarantined")}
    last = counts[-1] if counts else {}
    return {
        "landed_lines": landed,
        **total,
        "trusted_rows_total": last.get("trusted_rows_total"),
        "quarantine_rows_total": last.get("quarantine_rows_total"),
        "balanced": landed
        == total["raw_rows"]
        == total["inserted"] + total["updated"] + total["duplicates"] + total["quarantined"],
        "every_batch_reconciled": all(c["reconciled"] for c in counts),
    }


def _met(value: float | None, comparison: str, limit: float) -> bool | None:
    if value is None:
        return None
    return {"<=": value <= limit, "<": value < limit, ">=": value >= limit}[comparison]


def evaluate(phases: dict, ratio: dict, baseline: dict | None = None) -> dict[str, dict]:
    """Each target with its value and whether it is met (None: not measured in this run)."""
    dagster = phases.get("dagster_overhead", {})
    after = ratio["incremental_after_double_vs_incremental"]
    base_rss = baseline["phases"]["pipeline"]["peak_rss_mb"] if baseline else None
    values = {
        "pipeline_vs_parse": ratio["pipeline_vs_parse"],
        "peak_rss_mb": ratio["peak_rss_max_mb"],
        "rss_growth_vs_baseline": _div(phases["pipeline"]["peak_rss_mb"], base_rss),
        "spark_vs_embedded_with_start": ratio["spark_vs_embedded_with_start"],
        "incremental_vs_full": ratio["incremental_vs_full"],
        "incremental_change_after_double": None if after is None else round(abs(after - 1), 4),
        "definitions_load_s": dagster.get("definitions_load_median_s"),
        "definitions_validate_s": dagster.get("validate_median_s"),
        "orchestration_overhead_ms": dagster.get("overhead_per_asset_ms"),
    }
    return {
        name: {
            "what": what,
            "target": f"{comparison} {limit:g}",
            "value": values[name],
            "met": _met(values[name], comparison, limit),
        }
        for name, (what, comparison, limit) in TARGETS.items()
    }
