"""Databricks-shaped API errors: `{"error_code": ..., "message": ...}` with the status Databricks uses."""

from typing import Any, TypeVar

__all__ = ["ApiError", "JsonObject", "bad_request", "not_found", "optional", "required"]

T = TypeVar("T")
D = TypeVar("D")

# Parsed JSON as it arrives or leaves: its shape is the REST API's, checked where a field is read.
JsonObject = dict[str, Any]


class ApiError(Exception):
    """An error response: HTTP status, Databricks `error_code` and `message`."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message

    def body(self) -> JsonObject:
        """The JSON body Databricks sends with the error."""
        return {"error_code": self.error_code, "message": self.message}


def bad_request(message: str, error_code: str = "INVALID_PARAMETER_VALUE") -> ApiError:
    """A 400 (INVALID_PARAMETER_VALUE unless another code is given)."""
    return ApiError(400, error_code, message)


def not_found(message: str) -> ApiError:
    """A 404 RESOURCE_DOES_NOT_EXIST."""
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", message)


def required(body: JsonObject, name: str, kind: type[T]) -> T:
    """`body[name]` checked to be a `kind` (a 400 INVALID_PARAMETER_VALUE otherwise)."""
    value = optional(body, name, kind, None)
    if value is None:
        raise bad_request(f"Missing required field: {name}")
    return value


def optional(body: JsonObject, name: str, kind: type[T], default: D) -> T | D:
    """`body[name]` if present, checked to be a `kind`, else `default`. Query strings are converted, as the
    API accepts `?length=10` and `?recursive=true`."""
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, str) and kind is not str:
        try:
            value = (value.lower() == "true") if kind is bool else int(value) if kind is int else float(value)
        except ValueError:
            raise bad_request(f"Invalid value for field {name}: {value!r}") from None
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise bad_request(f"Invalid value for field {name}: expected {kind.__name__}, got {value!r}")
    return value
