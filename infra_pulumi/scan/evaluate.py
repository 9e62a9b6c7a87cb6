"""Judge a checkov JSON report: fail on no resources, on a failed check that is not a listed exception,
or on a listed exception that no longer fires (remove it, so the file stays the list of live exceptions).

Each exception in `exceptions.yaml` names the resource address, the check id and the reason.
"""

import argparse
import json
import sys
from pathlib import Path

import yaml

__all__ = ["evaluate", "load_exceptions"]


def load_exceptions(path: Path) -> dict[tuple[str, str], str]:
    """(resource address, check id) -> reason; every entry must carry all three."""
    entries = yaml.safe_load(path.read_text()).get("exceptions", [])
    exceptions: dict[tuple[str, str], str] = {}
    for i, entry in enumerate(entries):
        missing = [k for k in ("resource", "check", "reason") if not entry.get(k)]
        if missing:
            raise SystemExit(f"{path}: exception #{i + 1} lacks {', '.join(missing)}")
        exceptions[(entry["resource"], entry["check"])] = entry["reason"]
    return exceptions


def evaluate(report: dict, exceptions: dict[tuple[str, str], str]) -> tuple[list[str], dict[str, int]]:
    """(errors, counts) for one checkov report of the terraform_plan framework."""
    reports = report if isinstance(report, list) else [report]
    plan = [r for r in reports if r.get("check_type") == "terraform_plan"]
    if not plan:
        return ["checkov produced no terraform_plan report"], {}
    summary, results = plan[0]["summary"], plan[0]["results"]
    counts = {"resources": summary.get("resource_count", 0), "passed": summary.get("passed", 0)}
    errors = []
    if counts["resources"] == 0:
        errors.append("checkov saw 0 resources: the plan JSON was not understood (terraform_version missing?)")
    excepted = []
    for failed in results.get("failed_checks", []):
        key = (failed["resource"], failed["check_id"])
        if key in exceptions:
            excepted.append(key)
        else:
            errors.append(f"FAILED {failed['check_id']} on {failed['resource']}: {failed['check_name']}")
    counts["failed"] = len(results.get("failed_checks", [])) - len(excepted)
    counts["excepted"] = len(excepted)
    for resource, check in sorted(set(exceptions) - set(excepted)):
        errors.append(f"STALE exception {check} on {resource}: it no longer fires, remove it from exceptions.yaml")
    return errors, counts


def main(argv: list[str] | None = None) -> None:
    """Print the verdict; exit 1 on any error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--exceptions", type=Path, required=True)
    parser.add_argument("--stack", default="?")
    args = parser.parse_args(argv)
    errors, counts = evaluate(json.loads(args.report.read_text()), load_exceptions(args.exceptions))
    print(f"checkov [{args.stack}]: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for error in errors:
        print(f"  {error}")
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
