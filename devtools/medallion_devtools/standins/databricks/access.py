"""Who is calling, and whether they may: Unity Catalog's privilege model as Databricks documents it.

Every request acts as the principal its token maps to (`acting_as`, set by the server for the request's thread);
the stand-in's own set-up acts as nobody (`caller()` is None), with an account admin's rights, as a Pulumi
deployment does. A principal may do what it needs a privilege for when it is a metastore admin (only those the
stand-in is configured with), owns the object or one of its parents, or holds the privilege (or ALL PRIVILEGES) on the
object or a parent. Using anything inside a catalog also needs USE CATALOG on it, inside a schema USE SCHEMA; those
are not inherited from ownership of something else. EXTERNAL USE SCHEMA is never implied: not by ownership, not by
ALL PRIVILEGES, not by being an admin; it has to be granted, as Databricks documents.

Refusals are Databricks': 403 PERMISSION_DENIED, "User does not have <PRIVILEGE> on <Securable> '<name>'.",
"User is not an owner of <Securable> '<name>'.".

Groups hold privileges and ownership for their members, as account groups do: a principal acts with its own
grants, those of every group the stand-in lists it in (`groups_of`), and those of `account users`, the group every
user of the account is in. Nested groups are not modelled.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from medallion_devtools.standins.databricks.errors import ApiError

__all__ = ["ACCOUNT_USERS", "Access", "acting_as", "caller", "permission_denied"]

ACCOUNT_USERS = "account users"
"""The account group every user and service principal is a member of."""

_caller: ContextVar[str | None] = ContextVar("standin_caller", default=None)

LABELS = {
    "metastore": "Metastore",
    "catalog": "Catalog",
    "schema": "Schema",
    "table": "Table",
    "volume": "Volume",
    "external_location": "External Location",
    "storage_credential": "Storage Credential",
}
_EXPLICIT_ONLY = frozenset({"EXTERNAL_USE_SCHEMA"})  # never implied by ownership, ALL PRIVILEGES or admin


@contextmanager
def acting_as(principal: str | None) -> Iterator[None]:
    """Runs the block as `principal` (None: the stand-in's own set-up, with an account admin's rights)."""
    token = _caller.set(principal)
    try:
        yield
    finally:
        _caller.reset(token)


def caller() -> str | None:
    """The principal the current request acts as; None for the stand-in's own set-up."""
    return _caller.get()


def permission_denied(privilege: str, kind: str, name: str) -> ApiError:
    """Databricks' refusal for a missing privilege."""
    return ApiError(
        403, "PERMISSION_DENIED", f"User does not have {privilege.replace('_', ' ')} on {LABELS[kind]} '{name}'."
    )


def not_owner(kind: str, name: str) -> ApiError:
    """Databricks' refusal for what only an owner (or MANAGE, or a metastore admin) may do."""
    return ApiError(403, "PERMISSION_DENIED", f"User is not an owner of {LABELS[kind]} '{name}'.")


def _chain(kind: str, name: str) -> list[tuple[str, str]]:
    """The securable and the parents it inherits from (a table's schema and catalog)."""
    if kind not in ("schema", "table", "volume"):
        return [(kind, name)]
    parts = name.split(".")
    out = [(kind, name)]
    if kind != "schema":
        out.append(("schema", ".".join(parts[:2])))
    out.append(("catalog", parts[0]))
    return out


class Access:
    """Privilege checks over a metastore's owners and grants.

    Args:
        owner_of: the owner of a securable (`kind`, full name).
        privileges_of: the privileges granted to a principal on a securable itself (not inherited).
        metastore_admins: the principals with every privilege (except EXTERNAL USE SCHEMA); a group listed here
            makes its members admins.
        groups_of: the groups a principal is a member of (besides `account users`).
    """

    def __init__(
        self,
        owner_of: Callable[[str, str], str | None],
        privileges_of: Callable[[str, str, str], set[str]],
        metastore_admins: set[str],
        groups_of: Callable[[str], set[str]] = lambda principal: set(),
    ) -> None:
        self._owner_of = owner_of
        self._privileges_of = privileges_of
        self.metastore_admins = metastore_admins
        self._groups_of = groups_of

    def identities(self, principal: str) -> set[str]:
        """`principal` and the groups it acts through."""
        return {principal, ACCOUNT_USERS, *self._groups_of(principal)}

    def is_admin(self, principal: str | None) -> bool:
        return principal is None or bool(self.identities(principal) & self.metastore_admins)

    def _granted(self, kind: str, name: str, principal: str) -> set[str]:
        return set().union(*(self._privileges_of(kind, name, who) for who in self.identities(principal)))

    def _owns(self, kind: str, name: str, principal: str) -> bool:
        return self._owner_of(kind, name) in self.identities(principal)

    def has(self, principal: str | None, kind: str, name: str, privilege: str) -> bool:
        """Whether `principal` holds `privilege` on the securable, by admin, ownership, grant (to it or to a
        group it is in) or inheritance."""
        explicit = privilege in _EXPLICIT_ONLY
        if principal is None or (self.is_admin(principal) and not explicit):
            return True
        for k, n in _chain(kind, name):
            if not explicit and self._owns(k, n, principal):
                return True
            granted = self._granted(k, n, principal)
            if privilege in granted or (not explicit and "ALL_PRIVILEGES" in granted):
                return True
        return False

    def _usage(self, principal: str | None, kind: str, name: str) -> None:
        """USE CATALOG (and USE SCHEMA) on what holds the securable, unless the principal owns it."""
        chain = _chain(kind, name)
        for k, n in reversed(chain):
            if k == kind:
                return
            needed = "USE_CATALOG" if k == "catalog" else "USE_SCHEMA"
            if not self.has(principal, k, n, needed):
                raise permission_denied(needed, k, n)

    def require(self, kind: str, name: str, *privileges: str) -> None:
        """The caller may use what holds the securable and holds every one of `privileges` on it."""
        principal = caller()
        self._usage(principal, kind, name)
        for privilege in privileges:
            if not self.has(principal, kind, name, privilege):
                raise permission_denied(privilege, kind, name)

    def require_any(self, kind: str, name: str, *privileges: str) -> None:
        """The caller may use what holds the securable and holds one of `privileges` on it (the first is named)."""
        principal = caller()
        self._usage(principal, kind, name)
        if not any(self.has(principal, kind, name, p) for p in privileges):
            raise permission_denied(privileges[0], kind, name)

    def may_see(self, kind: str, name: str, *privileges: str) -> bool:
        """Whether a listing shows the securable to the caller."""
        try:
            self.require_any(kind, name, *privileges)
        except ApiError:
            return False
        return True

    def require_owner(self, kind: str, name: str) -> None:
        """The caller owns the securable (or a parent), holds MANAGE on it, or is a metastore admin."""
        principal = caller()
        if self.is_admin(principal):
            return
        assert principal is not None  # the set-up is an admin
        if any(self._owns(k, n, principal) for k, n in _chain(kind, name)):
            return
        if any("MANAGE" in self._granted(k, n, principal) for k, n in _chain(kind, name)):
            self._usage(principal, kind, name)
            return
        raise not_owner(kind, name)
