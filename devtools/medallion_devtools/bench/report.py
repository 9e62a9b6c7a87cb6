"""The benchmark's printed table: phases and stages, ratios, targets (plain text, aligned)."""

__all__ = ["format_report"]

_PHASE_ROWS = (
    ("generate", "generate landing data (not a target)"),
    ("parse_limit", "parse limit: DuckDB reads every column"),
    ("pipeline", "full pipeline (embedded)"),
    ("spark", "local Spark: trusted + refined transforms"),
    ("databricks_local", "databricks-local (Sail, Spark Connect): same transforms"),
    ("embedded_same_transforms", "embedded: same transforms"),
    ("incremental_1pct", "incremental 1 % batch (median of 3)"),
    ("double", "second full batch (table doubles)"),
    ("incremental_after_double", "incremental 1 % after doubling (median)"),
)
_STAGED = ("pipeline", "incremental_1pct", "double", "incremental_after_double")


def _num(value: object, digits: int = 2) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _refreshed(figures: dict) -> str:
    """How a refined table was refreshed: its mode, the dates it built and the trusted files it read."""
    dates = "all" if figures.get("dates") is None else f"{figures['dates']} dates"
    if figures.get("folded"):
        dates += f" ({figures['folded']} folded, {figures.get('files_probed')} files probed)"
    return f"{figures.get('refresh')}, {dates}, {figures.get('files_read')} files"


def _row(label: str, data: dict) -> list[str]:
    return [
        label,
        _num(data.get("wall_s")),
        _num(data.get("cpu_s")),
        _num(data.get("rows", data.get("lines"))),
        _num(data.get("rows_per_s"), 0),
        _num(data.get("mb_per_s"), 1),
        _num(data.get("peak_rss_mb", data.get("rss_mb")), 0),
    ]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def format_report(result: dict) -> str:
    """The whole report as text: the table the README quotes."""
    phases, machine, config = result["phases"], result["machine"], result["config"]
    out = [
        f"medallion bench: {config['events']:,} events, {result['started_at'][:19]}Z",
        f"machine: {machine.get('nproc')} cores, {machine.get('ram_gb')} GB, {machine.get('cpu_model')}; "
        f"Python {machine.get('python')}, duckdb {machine.get('duckdb')}, deltalake {machine.get('deltalake')}, "
        f"pyspark {machine.get('pyspark')}, dagster {machine.get('dagster')}",
        "",
    ]
    rows = []
    for name, label in _PHASE_ROWS:
        if name not in phases:
            continue
        data = phases[name]
        rows.append(_row(label, data))
        if "runs_wall_s" in data:
            rows.append([f"  runs: {', '.join(_num(w) for w in data['runs_wall_s'])} s", "", "", "", "", "", ""])
        if data.get("plans"):
            plans = data["plans"]
            rows.append([f"  plans: {plans['reused']} reused, {plans['built']} built", "", "", "", "", "", ""])
        if name in ("spark", "databricks_local", "embedded_same_transforms"):
            rows.append(_row("  session start (separate)", data["session_start"]))
        for stage, values in (
            data.get("stages", {}).items() if name in _STAGED or name in ("spark", "databricks_local") else ()
        ):
            rows.append(_row(f"  {stage}", values))
            for table, figures in values.get("tables", {}).items() if stage == "refined" else ():
                rows.append(_row(f"    {table} ({_refreshed(figures)})", figures))
    out += _table(["phase / stage", "wall s", "CPU s", "rows", "rows/s", "MB/s", "peak RSS MB"], rows)

    dagster = phases.get("dagster_overhead")
    if dagster:
        out += [
            "",
            f"dagster: definitions import+load {_num(dagster['definitions_load_median_s'])} s (median of "
            f"{len(dagster['definitions_load_s'])}), `definitions validate` {_num(dagster['validate_median_s'])} s, "
            f"{dagster['assets']} trivial assets in {_num(dagster['many_assets_run_s'])} s = "
            f"{_num(dagster['overhead_per_asset_ms'], 1)} ms/asset (1 asset: {_num(dagster['one_asset_run_s'])} s)",
        ]
    recon = result["reconciliation"]
    out += [
        "",
        f"rows: landed {recon['landed_lines']:,} = inserted {recon['inserted']:,} + updated {recon['updated']:,} "
        f"+ duplicates {recon['duplicates']:,} + quarantined {recon['quarantined']:,}: "
        f"{'balanced' if recon['balanced'] else 'NOT BALANCED'}",
        "",
    ]
    ratio_rows = [[name, _num(value, 3)] for name, value in result["ratios"].items()]
    out += _table(["ratio", "value"], ratio_rows)
    out.append("")
    target_rows = [
        [name, t["target"], _num(t["value"], 3), {True: "PASS", False: "FAIL", None: "n/a"}[t["met"]], t["what"]]
        for name, t in result["targets"].items()
    ]
    out += _table(["target", "limit", "value", "result", "what"], target_rows)
    return "\n".join(out) + "\n"
