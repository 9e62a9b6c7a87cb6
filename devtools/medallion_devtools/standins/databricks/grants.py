"""Unity Catalog grants: which privileges each securable type takes, which principals exist, and the
privilege assignments of every securable (`/api/2.1/unity-catalog/permissions` and `effective-permissions`).

Enforced by `access.py`: who may change them (owner, MANAGE, metastore admin) and what they allow.
"""

import threading
from collections.abc import Iterable
from typing import Literal

from medallion_devtools.standins.databricks.errors import ApiError, JsonObject, bad_request

__all__ = ["PRIVILEGES", "Grants", "SecurableType", "principal_does_not_exist", "securable_type"]

SecurableType = Literal["metastore", "catalog", "schema", "table", "volume", "external_location", "storage_credential"]

_TABLE = frozenset({"ALL_PRIVILEGES", "APPLY_TAG", "MANAGE", "MODIFY", "SELECT"})
_SCHEMA = _TABLE | {
    "CREATE_FUNCTION",
    "CREATE_MATERIALIZED_VIEW",
    "CREATE_MODEL",
    "CREATE_TABLE",
    "CREATE_VOLUME",
    "EXECUTE",
    "EXTERNAL_USE_SCHEMA",
    "READ_VOLUME",
    "REFRESH",
    "USE_SCHEMA",
    "WRITE_VOLUME",
}
# Which privileges can be granted on each securable type (Databricks' privilege names).
PRIVILEGES: dict[SecurableType, frozenset[str]] = {
    "table": _TABLE,
    "volume": frozenset({"ALL_PRIVILEGES", "APPLY_TAG", "MANAGE", "READ_VOLUME", "WRITE_VOLUME"}),
    "schema": _SCHEMA,
    "catalog": _SCHEMA | {"BROWSE", "CREATE_SCHEMA", "USE_CATALOG"},
    "metastore": frozenset({"CREATE_CATALOG", "CREATE_EXTERNAL_LOCATION", "CREATE_STORAGE_CREDENTIAL"}),
    "external_location": frozenset(
        {
            "ALL_PRIVILEGES",
            "BROWSE",
            "CREATE_EXTERNAL_TABLE",
            "CREATE_EXTERNAL_VOLUME",
            "CREATE_MANAGED_STORAGE",
            "MANAGE",
            "READ_FILES",
            "WRITE_FILES",
        }
    ),
    "storage_credential": frozenset(
        {"ALL_PRIVILEGES", "CREATE_EXTERNAL_LOCATION", "CREATE_EXTERNAL_TABLE", "MANAGE", "READ_FILES", "WRITE_FILES"}
    ),
}
_ALL_KNOWN = frozenset().union(*PRIVILEGES.values())
# The parents a table or schema inherits privileges from.
_PARENT_TYPES: dict[SecurableType, tuple[SecurableType, ...]] = {
    "table": ("schema", "catalog"),
    "volume": ("schema", "catalog"),
    "schema": ("catalog",),
    "catalog": (),
    "metastore": (),
    "external_location": (),
    "storage_credential": (),
}


def securable_type(value: str) -> SecurableType:
    """The securable type named in a permissions path (`catalog`, `schema`, `table`; any case)."""
    lowered = value.lower()
    if lowered not in PRIVILEGES:
        raise bad_request(
            f"Unsupported securable type: {value}. The stand-in grants on metastore, catalog, schema, table, volume, "
            "external_location and storage_credential."
        )
    return lowered  # type: ignore[return-value]  # checked against PRIVILEGES' keys just above


def principal_does_not_exist(principal: str) -> ApiError:
    """The error Databricks gives for a grant or owner naming an unknown user, group or service principal."""
    return ApiError(404, "PRINCIPAL_DOES_NOT_EXIST", f"Could not find principal with name {principal}")


class Grants:
    """Privilege assignments by securable, and the principals that may receive them."""

    def __init__(self, principals: Iterable[str]) -> None:
        self.principals = frozenset(principals)
        self._assignments: dict[tuple[str, str], dict[str, set[str]]] = {}
        self._lock = threading.Lock()

    def check_principal(self, principal: object) -> str:
        """`principal` if it is a known one (400 for a malformed name, 404 PRINCIPAL_DOES_NOT_EXIST otherwise)."""
        if (
            not isinstance(principal, str)
            or not principal.strip()
            or principal != principal.strip()
            or any(c == "`" or not c.isprintable() for c in principal)
        ):
            raise bad_request(f"Invalid principal name: {principal!r}")
        if principal not in self.principals:
            raise principal_does_not_exist(principal)
        return principal

    @staticmethod
    def check_privilege(kind: SecurableType, full_name: str, privilege: object) -> str:
        """`privilege` if it exists and applies to `kind` (400 INVALID_PARAMETER_VALUE otherwise)."""
        if not isinstance(privilege, str) or privilege.upper() not in _ALL_KNOWN:
            raise bad_request(f"Invalid privilege: {privilege!r}")
        if privilege.upper() not in PRIVILEGES[kind]:
            raise bad_request(
                f"Privilege {privilege.upper()} is not applicable to this entity [{full_name}:{kind.upper()}]."
            )
        return privilege.upper()

    def privileges_of(self, kind: str, full_name: str, principal: str) -> set[str]:
        """The privileges granted to `principal` on the securable itself (not inherited)."""
        with self._lock:
            return set(self._assignments.get((kind, full_name), {}).get(principal, set()))

    def get(self, kind: SecurableType, full_name: str, principal: str | None = None) -> JsonObject:
        """`GetPermissionsResponse`: the assignments made on this securable itself."""
        with self._lock:
            assigned = {p: sorted(privs) for p, privs in self._assignments.get((kind, full_name), {}).items()}
        return {
            "privilege_assignments": [
                {"principal": p, "privileges": privs}
                for p, privs in sorted(assigned.items())
                if principal is None or p == principal
            ]
        }

    def update(self, kind: SecurableType, full_name: str, changes: list[JsonObject]) -> JsonObject:
        """Applies `PermissionsChange`s (all checked first, so a bad one changes nothing)."""
        checked = []
        for change in changes:
            principal = self.check_principal(change.get("principal"))
            add = [self.check_privilege(kind, full_name, p) for p in change.get("add") or []]
            remove = [self.check_privilege(kind, full_name, p) for p in change.get("remove") or []]
            checked.append((principal, add, remove))
        with self._lock:
            assigned = self._assignments.setdefault((kind, full_name), {})
            for principal, add, remove in checked:
                privileges = assigned.setdefault(principal, set())
                privileges.update(add)
                privileges.difference_update(remove)
                if not privileges:
                    del assigned[principal]
        return self.get(kind, full_name)

    def effective(self, kind: SecurableType, full_name: str, principal: str | None = None) -> JsonObject:
        """`EffectivePermissionsList`: this securable's assignments and those inherited from its parents."""
        parts = full_name.split(".")
        sources = [(kind, full_name)] + [
            (parent, ".".join(parts[: len(parts) - i - 1])) for i, parent in enumerate(_PARENT_TYPES[kind])
        ]
        by_principal: dict[str, list[JsonObject]] = {}
        with self._lock:
            for source_kind, source_name in sources:
                for p, privileges in self._assignments.get((source_kind, source_name), {}).items():
                    for privilege in sorted(privileges):
                        entry: JsonObject = {"privilege": privilege}
                        if source_kind != kind:
                            entry["inherited_from_type"] = source_kind.upper()
                            entry["inherited_from_name"] = source_name
                        by_principal.setdefault(p, []).append(entry)
        return {
            "privilege_assignments": [
                {"principal": p, "privileges": privs}
                for p, privs in sorted(by_principal.items())
                if principal is None or p == principal
            ]
        }

    def drop(self, full_name: str) -> None:
        """Forgets the assignments of a deleted securable and of everything inside it."""
        with self._lock:
            for key in [k for k in self._assignments if k[1] == full_name or k[1].startswith(full_name + ".")]:
                del self._assignments[key]
