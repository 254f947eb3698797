"""Error bodies in the shape a spec declares for them, for a spec written without this engine in
mind: ``{code, message}``, RFC 9457's problem details, ``{"error": {...}}`` or any object.

The body an operation declares for a status (else its ``default``, else its ``4XX``/``5XX``) is
filled so that it validates and says what happened: a field named like a message gets the
message, one named like a code gets the status, ``title`` the status's reason phrase (or the
message, where no other field can carry it); any other required field a value of its schema
(``openapi.examples.made``). An operation that declares none answers problem details.
"""

from __future__ import annotations

import http
from typing import Any

from cms_mock.openapi.examples import made
from cms_mock.openapi.routes import resolved
from cms_mock.openapi.schemas import kind, merged

PROBLEM = "application/problem+json"

_MESSAGES = frozenset({"message", "detail", "details", "error", "errormessage", "errordescription", "description", "msg", "reason"})
_CODES = frozenset({"code", "status", "statuscode", "httpstatus", "errorcode", "httpcode"})


def declared_body(spec: dict[str, Any], operation: dict[str, Any] | None, status: int) -> tuple[dict[str, Any], str] | None:
    """The schema and media type ``operation`` declares for an answer of ``status``, if any."""
    if operation is None:
        return None
    responses = operation.get("responses", {})
    for key in (str(status), f"{str(status)[0]}XX", "default"):
        if key in responses:
            content = resolved(spec, responses[key]).get("content", {})
            for media_type in ("application/json", PROBLEM, *content):
                if media_type in content and "schema" in content[media_type]:
                    return content[media_type]["schema"], media_type
            return None
    return None


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Problem details (RFC 9457).",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri-reference"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 100, "maximum": 599},
        "detail": {"type": "string"},
    },
}


def refusal(declared: set[str]) -> int:
    """The status of a request that breaks the rules, for an operation that declares the
    statuses ``declared``: its 400 when it declares a 400 and no 422, else 422."""
    return 400 if "400" in declared and "422" not in declared else 422


def problem(status: int, message: str) -> dict[str, Any]:
    """RFC 9457's problem details of an answer no schema describes."""
    return {"type": "about:blank", "title": _phrase(status), "status": status, "detail": message}


def fill(spec: dict[str, Any], schema: dict[str, Any], status: int, message: str) -> Any:
    """A value of ``schema`` that says ``message`` (see the module's rules)."""
    schema = merged(spec, schema)
    written = kind(schema)
    if written == "string":
        return message
    if written != "object":
        return made(spec, schema)
    required = set(schema.get("required", []))
    body = {}
    for name, field in schema.get("properties", {}).items():
        value = _named(spec, name, field, status, message)
        if value is not None:
            body[name] = value
        elif name in required:
            body[name] = made(spec, field)
    if not _says(body, message) and "title" in body:
        body["title"] = message  # a schema with no field for a message: its title says what happened
    return body


def _says(value: Any, message: str) -> bool:
    """Whether ``message`` is somewhere in ``value`` (a field of a nested error object included)."""
    return value == message or (isinstance(value, dict) and any(_says(item, message) for item in value.values()))


def _named(spec: dict[str, Any], name: str, field: dict[str, Any], status: int, message: str) -> Any:
    """What a field says by its name, or None for a field whose name says nothing of an error."""
    field = merged(spec, field)
    key = name.lower().replace("_", "").replace("-", "")
    written = kind(field)
    if key in _MESSAGES:
        return message if written == "string" else fill(spec, field, status, message) if written == "object" else None
    if key in _CODES:
        return status if written in ("integer", "number") else str(status) if written == "string" else None
    if key == "title" and written == "string":
        return _phrase(status)
    if key == "type" and written == "string" and field.get("format") in ("uri", "uri-reference"):
        return "about:blank"
    return None


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"
