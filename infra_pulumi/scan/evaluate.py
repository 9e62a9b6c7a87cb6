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


def plan_addresses(path: Path) -> set[str]:
    """The resource addresses of a Terraform plan JSON."""
    plan = json.loads(path.read_text())
    return {r["address"] for r in plan["planned_values"]["root_module"]["resources"]}


def evaluate(
    report: dict, exceptions: dict[tuple[str, str], str], addresses: set[str] | None = None
) -> tuple[list[str], dict[str, int]]:
    """(errors, counts) for one checkov report of the terraform_plan framework.

    An exception is stale when its resource is in the plan (`addresses`; all, when not given) and the
    check did not fail on it. An exception whose resource no scanned plan has is left to the other stacks.
    """
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
        if addresses is not None and resource not in addresses:
            continue
        errors.append(f"STALE exception {check} on {resource}: it no longer fires, remove it from exceptions.yaml")
    return errors, counts


def main(argv: list[str] | None = None) -> None:
    """Print the verdict; exit 1 on any error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--exceptions", type=Path, required=True)
    parser.add_argument("--stack", default="?")
    parser.add_argument("--plan", type=Path, help="the scanned plan JSON (stale exceptions: only its resources)")
    args = parser.parse_args(argv)
    addresses = plan_addresses(args.plan) if args.plan else None
    errors, counts = evaluate(json.loads(args.report.read_text()), load_exceptions(args.exceptions), addresses)
    print(f"checkov [{args.stack}]: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for error in errors:
        print(f"  {error}")
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
