"""Storage credentials and external locations (`/api/2.1/unity-catalog/storage-credentials` and
`external-locations`): where Unity Catalog may put external tables, and whether it may write there.

An external table's LOCATION must lie inside an external location on which the caller holds CREATE EXTERNAL TABLE;
temporary credentials to write a table are refused when its location is read-only (the raw zone's, as the Pulumi
program makes it). Locations may not overlap. Local folders are locations too (`file:///…`, or a plain absolute
path), so the stand-in's tests can keep their lakes in temporary folders.
"""

import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from medallion_devtools.standins.databricks.access import Access, caller, permission_denied
from medallion_devtools.standins.databricks.errors import ApiError, JsonObject, bad_request, not_found

__all__ = ["ExternalLocation", "ExternalLocations", "normalize_url"]


def normalize_url(url: str) -> str:
    """A location as one comparable form: `file:///x` and `/x` alike, no trailing slash, `s3a` as `s3`."""
    if url.startswith("/"):
        url = "file://" + url
    if url.startswith("s3a://"):
        url = "s3://" + url.removeprefix("s3a://")
    return url.rstrip("/")


def _inside(path: str, root: str) -> bool:
    path, root = normalize_url(path), normalize_url(root)
    return path == root or path.startswith(root + "/") or (root.endswith("://") and path.startswith(root))


@dataclass
class _Credential:
    name: str
    owner: str
    role_arn: str
    read_only: bool = False
    comment: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def info(self, metastore_id: str) -> JsonObject:
        info: JsonObject = {
            "name": self.name,
            "id": self.id,
            "owner": self.owner,
            "read_only": self.read_only,
            "aws_iam_role": {"role_arn": self.role_arn},
            "metastore_id": metastore_id,
        }
        if self.comment is not None:
            info["comment"] = self.comment
        return info


@dataclass
class ExternalLocation:
    """A URL under a storage credential, read-only or not."""

    name: str
    url: str
    credential_name: str
    owner: str
    read_only: bool = False
    comment: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def info(self, metastore_id: str) -> JsonObject:
        info: JsonObject = {
            "name": self.name,
            "url": self.url,
            "credential_name": self.credential_name,
            "owner": self.owner,
            "read_only": self.read_only,
            "metastore_id": metastore_id,
            "id": self.id,
        }
        if self.comment is not None:
            info["comment"] = self.comment
        return info


class ExternalLocations:
    """The metastore's storage credentials and external locations."""

    def __init__(self, access: Access, metastore_id: str, admin: str) -> None:
        self._access = access
        self._metastore_id = metastore_id
        self._admin = admin
        self._credentials: dict[str, _Credential] = {}
        self._locations: dict[str, ExternalLocation] = {}
        self._lock = threading.RLock()

    def _owner(self) -> str:
        return caller() or self._admin

    # -- storage credentials ---------------------------------------------------------------------------------------
    def create_credential(self, body: JsonObject) -> JsonObject:
        """`POST storage-credentials`: an AWS IAM role (the stand-in assumes nothing with it)."""
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise bad_request("Missing required field: name")
        if not self._access.has(caller(), "metastore", self._metastore_id, "CREATE_STORAGE_CREDENTIAL"):
            raise permission_denied("CREATE_STORAGE_CREDENTIAL", "metastore", self._metastore_id)
        role = (body.get("aws_iam_role") or {}).get("role_arn") or "arn:aws:iam::000000000000:role/standin"
        with self._lock:
            if name in self._credentials:
                raise ApiError(409, "STORAGE_CREDENTIAL_ALREADY_EXISTS", f"Storage Credential '{name}' already exists.")
            credential = _Credential(name, self._owner(), str(role), bool(body.get("read_only")), body.get("comment"))
            self._credentials[name] = credential
        return credential.info(self._metastore_id)

    def find_credential(self, name: str) -> _Credential | None:
        with self._lock:
            return self._credentials.get(name)

    def credential_named(self, name: str) -> _Credential:
        with self._lock:
            found = self._credentials.get(name)
        if found is None:
            raise not_found(f"Storage Credential '{name}' does not exist.")
        return found

    def get_credential(self, name: str) -> JsonObject:
        return self.credential_named(name).info(self._metastore_id)

    def list_credentials(self) -> JsonObject:
        with self._lock:
            return {"storage_credentials": [c.info(self._metastore_id) for _, c in sorted(self._credentials.items())]}

    # -- external locations -----------------------------------------------------------------------------------------
    def create(self, body: JsonObject) -> JsonObject:
        """`POST external-locations`: needs CREATE EXTERNAL LOCATION on the metastore and on the credential."""
        name, url, credential_name = (body.get(k) for k in ("name", "url", "credential_name"))
        if not all(isinstance(v, str) and v for v in (name, url, credential_name)):
            raise bad_request("name, url and credential_name are required.")
        assert isinstance(name, str) and isinstance(url, str) and isinstance(credential_name, str)
        credential = self.credential_named(credential_name)
        if not self._access.has(caller(), "metastore", self._metastore_id, "CREATE_EXTERNAL_LOCATION"):
            raise permission_denied("CREATE_EXTERNAL_LOCATION", "metastore", self._metastore_id)
        if not self._access.has(caller(), "storage_credential", credential.name, "CREATE_EXTERNAL_LOCATION"):
            raise permission_denied("CREATE_EXTERNAL_LOCATION", "storage_credential", credential.name)
        with self._lock:
            if name in self._locations:
                raise ApiError(409, "EXTERNAL_LOCATION_ALREADY_EXISTS", f"External Location '{name}' already exists.")
            for other in self._locations.values():
                if _inside(url, other.url) or _inside(other.url, url):
                    raise bad_request(
                        f"Input path url '{url}' overlaps with other external locations within 'CreateExternalLocation'"
                        f" call. Conflicting external location: '{other.name}' at '{other.url}'."
                    )
            location = ExternalLocation(
                name,
                url,
                credential.name,
                self._owner(),
                bool(body.get("read_only")) or credential.read_only,
                body.get("comment"),
            )
            self._locations[name] = location
        return location.info(self._metastore_id)

    def find(self, name: str) -> ExternalLocation | None:
        with self._lock:
            return self._locations.get(name)

    def named(self, name: str) -> ExternalLocation:
        with self._lock:
            found = self._locations.get(name)
        if found is None:
            raise not_found(f"External Location '{name}' does not exist.")
        return found

    def get(self, name: str) -> JsonObject:
        return self.named(name).info(self._metastore_id)

    def list(self) -> JsonObject:
        with self._lock:
            return {"external_locations": [x.info(self._metastore_id) for _, x in sorted(self._locations.items())]}

    def update(self, name: str, body: JsonObject) -> JsonObject:
        """`PATCH external-locations/{name}`: owner, comment, read_only (owner only)."""
        location = self.named(name)
        self._access.require_owner("external_location", name)
        with self._lock:
            if "read_only" in body:
                location.read_only = bool(body["read_only"])
            if "comment" in body:
                location.comment = body["comment"]
            if "owner" in body:
                location.owner = str(body["owner"])
        return location.info(self._metastore_id)

    def delete(self, name: str) -> JsonObject:
        self.named(name)
        self._access.require_owner("external_location", name)
        with self._lock:
            del self._locations[name]
        return {}

    def local_folders(self) -> tuple[Path, ...]:
        """The local folders of the external locations (`file://` URLs): storage only Unity Catalog reaches."""
        with self._lock:
            urls = [normalize_url(x.url) for x in self._locations.values()]
        return tuple(sorted(Path(u.removeprefix("file://")) for u in urls if u.startswith("file://")))

    def covering(self, url: str) -> ExternalLocation | None:
        """The external location `url` lies in."""
        with self._lock:
            return next((x for x in self._locations.values() if _inside(url, x.url)), None)

    def require(self, url: str, privilege: str) -> ExternalLocation:
        """The external location covering `url`, on which the caller holds `privilege`; refused otherwise."""
        location = self.covering(url)
        if location is None:
            raise ApiError(
                403,
                "PERMISSION_DENIED",
                f"No external location covers the path '{url}'. A metastore admin must create one (with a storage "
                f"credential) and grant {privilege.replace('_', ' ')} on it.",
            )
        if not self._access.has(caller(), "external_location", location.name, privilege):
            raise permission_denied(privilege, "external_location", location.name)
        return location
