"""The errors the service raises, free of any wire format.

Handlers, the store and the validators raise these; ``error_responses`` turns them into the
body each contract promises (``{"detail": ...}`` for the CMS, ``{"error": ...}`` for profiles).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class FieldError:
    """One problem with a request body, in Pydantic v1's terms (what FastAPI clients parse)."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    def as_dict(self) -> dict[str, object]:
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


class ApiError(Exception):
    """An error with an HTTP status and a message fit for the client."""

    status = 500

    def __init__(self, message: str, *, status: int | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        if status is not None:
            self.status = status


class InjectedError(ApiError):
    """A fault asked for (``faults``) whose body is not a message in the service's dialect but
    the example the spec declares for it (the health check's ``Unhealthy``)."""

    def __init__(self, body: dict[str, object], *, status: int, headers: dict[str, str]) -> None:
        super().__init__(str(body), status=status, headers=headers)
        self.body = body


class RecordNotFound(ApiError):
    status = 404

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


NOTHING_CHANGED = "nothing was changed"
MAYBE_CHANGED = "the change was not acknowledged and may or may not have been made: read it back"


class SnapshotNotFound(ApiError):
    status = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"Snapshot {name} not found")


class StoreUnavailable(ApiError):
    """The store cannot do what was asked now; the reason says whether anything changed
    (``NOTHING_CHANGED``, ``MAYBE_CHANGED``) when it was asked to change something."""

    status = 503

    def __init__(self, reason: str) -> None:
        super().__init__(f"Storage unavailable: {reason}")
        self.reason = reason


class InvalidBody(ApiError):
    """The body broke the schema's rules; ``errors`` lists every problem, not just the first."""

    status = 422

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e.loc[1:])) or 'body'}: {e.msg}" for e in errors))
        self.errors = errors


class MalformedBody(InvalidBody):
    """The body is not a JSON document at all (empty, not UTF-8, not JSON)."""

    def __init__(self, msg: str, type_: str = "value_error.jsondecode") -> None:
        super().__init__([FieldError(("body",), msg, type_)])


class MissingBody(MalformedBody):
    """No body at all: Pydantic's "field required" at ``body`` for a FastAPI client; ``words``
    for a dialect that writes one sentence."""

    words = "Request body is required: send a JSON object"

    def __init__(self) -> None:
        super().__init__("field required", "value_error.missing")


class BodyTooLarge(ApiError):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body is larger than {limit} bytes")


class PreconditionFailed(ApiError):
    """``If-Match`` names a version the record no longer is (or there is no record)."""

    status = 412


class InvalidParameter(ApiError):
    """A path parameter does not have the type its route declares."""

    status = 400


class StoreRefused(Exception):
    """The store cannot be opened as it is, and must not be changed to make it so (a damaged
    data file, a database schema newer than this version knows): the service does not start."""


class CorruptDataFile(StoreRefused):
    """The data file exists but is not a store; the service refuses to overwrite it."""

    def __init__(self, path: Path, reason: str) -> None:
        backup = path.with_name(path.name + ".bak")
        super().__init__(
            f"{path} is not a valid data file ({reason}). It was left untouched. "
            f"Repair it (`jq . {path}` shows where it breaks), restore it by copying a good backup such as {backup} over it, "
            f"or remove it to start again with sample data."
        )
        self.path = path
        self.reason = reason
