"""`medallion quality [dataset]`: each dataset's recent batches per figure and per rule, as a sparkline with
the newest value and its verdict against the baseline, and optionally a PNG chart (`--png`, the `charts` extra).

Parsing and printing only; the figures come from `zones/quality.py`. Registered by `cli.main.build_parser`.
"""

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["register"]

SettingsFor = Callable[[argparse.Namespace], Any]
BARS = "▁▂▃▄▅▆▇█"


def register(sub: Any, settings_for: SettingsFor) -> None:
    """Adds `quality` to the `medallion` subparsers `sub`."""
    p = sub.add_parser(
        "quality", help="quality figures per batch and rule, with anomalies", description=cmd_quality.__doc__
    )
    p.add_argument("dataset", nargs="?", help="one dataset of the contracts (default: every dataset)")
    p.add_argument("--batches", type=int, default=20, help="recent batches shown")
    p.add_argument("--png", type=Path, help="also draw the trend to this PNG file (needs the charts extra)")
    p.set_defaults(func=cmd_quality, settings_for=settings_for)


def cmd_quality(args: argparse.Namespace) -> int:
    """Shows, per dataset, each figure of the recent batches (oldest to newest), the newest batch's value and
    whether it left its recent range (median +- k x MAD of the last MEDALLION_QUALITY_BATCHES batches)."""
    from medallion_platform.contracts import load_contracts
    from medallion_platform.errors import ConfigError
    from medallion_platform.lake.lakehouse import Lakehouse
    from medallion_platform.zones.quality import quality_trend

    settings = args.settings_for(args)
    contracts = load_contracts()
    if args.dataset is not None and args.dataset not in contracts:
        raise ConfigError(f"no dataset {args.dataset!r} in the contracts: use one of {', '.join(sorted(contracts))}")
    names = [args.dataset] if args.dataset else sorted(contracts)
    lake = Lakehouse(settings)
    trends = [quality_trend(lake, contracts[n], batches=args.batches) for n in names]
    lines: list[str] = []
    for trend in trends:
        lines += _table(trend)
    print("\n".join(lines))
    if args.png is not None:
        _chart([t for t in trends if t.batches], args.png)
        print(f"chart: {args.png}")
    return 0


def _spark(values: list[float]) -> str:
    low, high = min(values, default=0.0), max(values, default=0.0)
    if high == low:
        return BARS[0] * len(values)
    return "".join(BARS[round((v - low) / (high - low) * (len(BARS) - 1))] for v in values)


def _show(name: str, value: float) -> str:
    return f"{value:.2%}" if name.startswith("quarantine_rate_") else f"{value:,.0f}"


def _table(trend: Any) -> list[str]:
    if not trend.batches:
        return [f"{trend.dataset}: no batches recorded yet", ""]
    newest = trend.recorded_at[-1].strftime("%Y-%m-%d %H:%M UTC")
    count = f"{len(trend.batches)} batch{'es' if len(trend.batches) > 1 else ''}"
    lines = [f"{trend.dataset}: {count}, newest raw batch {trend.batches[-1]} at {newest}"]
    width = max(len(n) for n in trend.series)
    lines.append(f"  {'figure':{width}}  {'trend':{len(trend.batches)}}  {'newest':>10}  {'expected':>21}  verdict")
    for name, values in trend.series.items():
        verdict = trend.verdicts.get("volume" if name == "landed" else name)
        expected, state = "", ""
        if verdict is not None:
            if verdict.low is None or verdict.high is None:
                state = "baseline too short"
            else:
                expected = f"{_show(name, max(verdict.low, 0))}..{_show(name, verdict.high)}"
                state = "ANOMALY" if verdict.anomalous else "ok"
        spark = _spark(values)
        lines.append(f"  {name:{width}}  {spark}  {_show(name, values[-1]):>10}  {expected:>21}  {state}".rstrip())
    return [*lines, ""]


def _chart(trends: list[Any], path: Path) -> None:
    """One panel per dataset: landed rows (left axis) and each rule's quarantine rate (right axis)."""
    from medallion_platform.errors import NotInstalled

    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: draw to a file
        import matplotlib.pyplot as plt
    except ImportError:
        raise NotInstalled("the PNG chart needs matplotlib: pip install 'medallion-platform[charts]'") from None
    figure, axes = plt.subplots(max(len(trends), 1), 1, figsize=(10, 3.5 * max(len(trends), 1)), squeeze=False)
    for ax, trend in zip(axes[:, 0], trends, strict=False):
        x = range(len(trend.batches))
        ax.bar(x, trend.series["landed"], color="#d0d7de", label="landed rows")
        ax.set_ylabel("landed rows")
        ax.set_title(f"{trend.dataset}: quality per batch")
        ax.set_xticks(list(x), trend.batches, rotation=90, fontsize=7)
        rates = ax.twinx()
        for name, values in trend.series.items():
            if name.startswith("quarantine_rate_") and any(values):
                flagged = trend.verdicts.get(name)
                style = "-o" if flagged is not None and flagged.anomalous else "-"
                rates.plot(list(x), [v * 100 for v in values], style, label=name.removeprefix("quarantine_rate_"))
        rates.set_ylabel("quarantined, % of landed")
        rates.legend(loc="upper left", fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)
