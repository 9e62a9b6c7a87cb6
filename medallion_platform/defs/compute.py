"""The compute a Databricks platform engineer would choose for Medallion's steps and notebooks.

Job compute by default: a new cluster per step run, described by `MEDALLION_DATABRICKS_NODE_TYPE` and friends
(or a whole spec in dagster-databricks' `new` shape, `MEDALLION_DATABRICKS_NEW_CLUSTER`); an existing all-purpose
cluster only when `MEDALLION_DATABRICKS_CLUSTER_ID` is set; serverless for Pipes notebook tasks when
`MEDALLION_DATABRICKS_NOTEBOOK_COMPUTE=serverless`.

| variable | meaning |
|---|---|
| `MEDALLION_DATABRICKS_NODE_TYPE` | worker (and driver) node type, e.g. `m6gd.large` |
| `MEDALLION_DATABRICKS_SPARK_VERSION` | the runtime (default `15.4.x-scala2.12`, an LTS) |
| `MEDALLION_DATABRICKS_WORKERS` | `N` workers, or `MIN-MAX` to autoscale (default 1) |
| `MEDALLION_DATABRICKS_ACCESS_MODE` | `dedicated` (default, `SINGLE_USER`: step launcher needs `sc`), `standard` |
| `MEDALLION_DATABRICKS_NOTEBOOK_ACCESS_MODE` | a notebook job cluster's: `standard` (default), `dedicated` |
| `MEDALLION_DATABRICKS_POLICY_ID` | the cluster policy the registration creates |
| `MEDALLION_DATABRICKS_CLUSTER_TAGS` | JSON object of custom tags (cost attribution) |

Every spec goes through dagster-databricks' own config schema (`launcher.validated_launcher_config`); a spec
without `data_security_mode` gets the dedicated access mode (Unity Catalog-enabled, one principal). Pipes notebook
tasks on a job cluster run in standard access mode by default: they use only the cluster's `spark` (Spark Connect on
standard access mode), never `sc`, and standard access mode is where Unity Catalog enforces masks and row filters
for every reader; the step launcher's remote entry point keeps the dedicated mode, as it reads the driver's
`SparkContext`.
"""

import json
from collections.abc import Mapping
from typing import Any

from medallion_platform.settings import ConfigError

__all__ = ["ACCESS_MODES", "DEFAULT_SPARK_VERSION", "jobs_api_cluster", "new_cluster_from_env", "notebook_cluster"]

DEFAULT_SPARK_VERSION = "15.4.x-scala2.12"
ACCESS_MODES = {"dedicated": "SINGLE_USER", "standard": "USER_ISOLATION"}
"""Unity Catalog access modes by their current names, as the Clusters API spells them."""


def new_cluster_from_env(env: Mapping[str, str]) -> dict[str, Any] | None:
    """The job cluster spec in dagster-databricks' `new` shape, from `MEDALLION_DATABRICKS_NEW_CLUSTER` or the
    variables above; None when neither is set (then an existing cluster must be)."""
    if env.get("MEDALLION_DATABRICKS_NEW_CLUSTER"):
        try:
            given = json.loads(env["MEDALLION_DATABRICKS_NEW_CLUSTER"])
        except json.JSONDecodeError as exc:
            raise ConfigError(f"MEDALLION_DATABRICKS_NEW_CLUSTER is not JSON: {exc}") from None
        if not isinstance(given, dict):
            raise ConfigError("MEDALLION_DATABRICKS_NEW_CLUSTER must be a JSON object (dagster-databricks' `new`)")
        return {"data_security_mode": ACCESS_MODES["dedicated"], **given}
    node_type = env.get("MEDALLION_DATABRICKS_NODE_TYPE")
    if not node_type:
        return None
    spec: dict[str, Any] = {
        "spark_version": env.get("MEDALLION_DATABRICKS_SPARK_VERSION") or DEFAULT_SPARK_VERSION,
        "nodes": {"node_types": {"node_type_id": node_type}},
        "size": _size(env.get("MEDALLION_DATABRICKS_WORKERS") or "1"),
        "data_security_mode": ACCESS_MODES[_access_mode(env, "MEDALLION_DATABRICKS_ACCESS_MODE", "dedicated")],
    }
    if env.get("MEDALLION_DATABRICKS_POLICY_ID"):
        spec["policy_id"] = env["MEDALLION_DATABRICKS_POLICY_ID"]
    if env.get("MEDALLION_DATABRICKS_CLUSTER_TAGS"):
        try:
            tags = json.loads(env["MEDALLION_DATABRICKS_CLUSTER_TAGS"])
        except json.JSONDecodeError as exc:
            raise ConfigError(f"MEDALLION_DATABRICKS_CLUSTER_TAGS is not JSON: {exc}") from None
        spec["custom_tags"] = [{"key": str(k), "value": str(v)} for k, v in dict(tags).items()]
    return spec


def _access_mode(env: Mapping[str, str], variable: str, default: str) -> str:
    """The access mode `variable` names (one of `ACCESS_MODES`), `default` when unset."""
    mode = env.get(variable, default)
    if mode not in ACCESS_MODES:
        raise ConfigError(f"{variable}={mode}: one of {', '.join(ACCESS_MODES)}")
    return mode


def _size(workers: str) -> dict[str, Any]:
    low, _, high = workers.partition("-")
    try:
        if high:
            return {"autoscale": {"min_workers": int(low), "max_workers": int(high)}}
        return {"num_workers": int(low)}
    except ValueError:
        raise ConfigError(f"MEDALLION_DATABRICKS_WORKERS={workers}: a number of workers, or MIN-MAX") from None


def jobs_api_cluster(spec: Mapping[str, Any]) -> dict[str, Any]:
    """dagster-databricks' `new` shape (`nodes`, `size`, tags as a list) as the Jobs API's `new_cluster`
    (`node_type_id`/`instance_pool_id`, `num_workers`/`autoscale`, tags as an object), translated as
    dagster-databricks translates it for the step launcher (the SDK's `SubmitTask.from_dict` silently drops
    `nodes` and `size`)."""
    out = {k: v for k, v in spec.items() if k not in ("nodes", "size", "custom_tags")}
    nodes, size = spec.get("nodes") or {}, spec.get("size") or {}
    if "instance_pool_id" in nodes:
        out |= {k: nodes[k] for k in ("instance_pool_id", "driver_instance_pool_id") if k in nodes}
    else:
        node_types = nodes.get("node_types") or {}
        out |= {k: node_types[k] for k in ("node_type_id", "driver_node_type_id") if k in node_types}
    out |= {k: size[k] for k in ("num_workers", "autoscale") if k in size}
    tags = spec.get("custom_tags") or []
    if tags:
        out["custom_tags"] = {t["key"]: t["value"] for t in tags} if isinstance(tags, list) else dict(tags)
    return out


def notebook_cluster(spec: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """The steps' job cluster spec (dagster-databricks' `new` shape) for a Pipes notebook task: the same runtime,
    nodes, size, policy and tags, in `MEDALLION_DATABRICKS_NOTEBOOK_ACCESS_MODE` (standard by default). A standard
    access mode cluster names no single user: whoever submits the run is its principal."""
    mode = _access_mode(env, "MEDALLION_DATABRICKS_NOTEBOOK_ACCESS_MODE", "standard")
    out = {**spec, "data_security_mode": ACCESS_MODES[mode]}
    if mode == "standard":
        out.pop("single_user_name", None)
    return out
