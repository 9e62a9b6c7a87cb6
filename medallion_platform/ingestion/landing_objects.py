"""A landed object and a rejected one: plain records, shared by the landing layout, the ledger and the parsers
(the Spark parser included, which must not import the layout's file systems)."""

from dataclasses import dataclass

__all__ = ["LandingFile", "RejectedObject"]


@dataclass(frozen=True)
class LandingFile:
    """One landed object: its key relative to the raw zone root, size and landing date."""

    key: str
    size: int
    landing_date: str
    fingerprint: str = ""
    """Size and modification time: a re-landed object under the same key has a new fingerprint."""


@dataclass(frozen=True)
class RejectedObject:
    """A landing object raw cannot take, with why (a `REJECTION_REASONS` key) and the error in words."""

    key: str
    reason: str
    detail: str
    fingerprint: str
    landing_date: str | None = None

    def describe(self) -> str:
        return f"{self.key}: {self.reason} ({self.detail})"
