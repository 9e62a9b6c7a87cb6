"""`medallion chaos`: the reliability trials at a chosen size, a figures table, JSON under the work directory."""

import argparse
import sys
from pathlib import Path

__all__ = ["cmd_chaos", "register"]


def cmd_chaos(args: argparse.Namespace) -> int:
    """Kills `materialize` -9 at several points and reruns it, re-delivers every object, starts two writers at
    once; compares every table with an uninterrupted run of the same landing objects and prints the figures.
    Exits 1 on a corrupt table, a lost or duplicated row or a hung rerun."""
    from medallion_devtools.chaos.chaos import ChaosConfig, format_figures, run_chaos, write_json

    work_dir = Path(args.work_dir).resolve()
    if work_dir.exists() and any(work_dir.iterdir()) and not (work_dir / _MARKER).exists():
        print(f"medallion: {work_dir} holds files chaos did not make; pass an empty or new --work-dir", file=sys.stderr)
        return 2
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / _MARKER).write_text("made by `medallion chaos`; its trial folders are replaced by the next run\n")
    config = ChaosConfig(
        work_dir=work_dir,
        orders=args.orders,
        trials=args.trials,
        seed=args.seed,
        poison=args.poison,
        rerun_timeout=args.rerun_timeout,
        redelivery=not args.no_redelivery,
        writers=not args.no_writers,
    )
    result = run_chaos(config, log=lambda line: print(line, file=sys.stderr, flush=True))
    text = format_figures(result.figures)
    out = work_dir / "chaos.json"
    write_json(result, out)
    (work_dir / "chaos.txt").write_text(text + "\n")
    print(text)
    print(f"wrote {out} and {out.with_suffix('.txt')}; logs in {work_dir / 'logs'}")
    return 1 if result.figures.failed else 0


_MARKER = ".medallion-chaos"


def register(subparsers) -> argparse.ArgumentParser:
    """Registers `chaos` on the `medallion` command's subparsers."""
    from medallion_devtools.chaos.landing import POISON_KINDS

    p = subparsers.add_parser(
        "chaos",
        help="reliability trials: kill -9 and rerun, re-delivery, two writers",
        description=cmd_chaos.__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--orders", type=int, default=5000, help="orders in the generated landing corpus")
    p.add_argument("--trials", type=int, default=5, help="kill -9 trials, each followed by a rerun")
    p.add_argument("--work-dir", default="chaos_results", help="where lakes, logs and chaos.json are written")
    p.add_argument("--seed", type=int, default=7, help="seed of the corpus and of the random kill points")
    p.add_argument(
        "--poison",
        type=int,
        default=0,
        choices=range(len(POISON_KINDS) + 1),
        metavar=f"0..{len(POISON_KINDS)}",
        help=f"poison objects added to the corpus ({', '.join(POISON_KINDS)})",
    )
    p.add_argument(
        "--rerun-timeout",
        type=float,
        help="seconds a rerun may take before it counts as hung (default: 3 x reference, at least 45)",
    )
    p.add_argument("--no-redelivery", action="store_true", help="skip the re-delivery trial")
    p.add_argument("--no-writers", action="store_true", help="skip the two-writers trials")
    p.set_defaults(func=cmd_chaos)
    return p
