"""What the engine answers beyond a user's spec, declared in the document it serves.

A spec written for another server does not declare the engine's health check, nor every status
the engine may answer (a 413 for a body too large, a 503 when the store cannot work, a 304 for
an unchanged record...). The document the engine serves (and routes, and validates by) is the
user's spec with them added, each marked ``x-cms-mock-added: true`` so that a reader can tell
the user's declarations from the engine's, and "never answer what the served spec does not
declare" stays true: an added status answers problem details (RFC 9457). The user's file is
never changed; what it declares (its own ``/health``, a status, a ``default``) is kept.
"""

from __future__ import annotations

import copy
from typing import Any

from cms_mock.openapi.error_bodies import PROBLEM, PROBLEM_SCHEMA, refusal
from cms_mock.openapi.resources import Resource
from cms_mock.openapi.routes import METHODS

ADDED = "x-cms-mock-added"

HEALTH = "/health"

_HEALTH_SCHEMA = {
    "type": "object",
    "required": ["status", "service", "total_records"],
    "properties": {
        "status": {"type": "string", "enum": ["healthy", "unhealthy"]},
        "service": {"type": "string"},
        "total_records": {"type": "integer", "minimum": 0},
        "reason": {"type": "string", "description": "Present only when unhealthy."},
    },
}

_HEALTH = {
    ADDED: True,
    "get": {
        "summary": "Health check of the mock",
        "description": "Healthy when the store can read and write now; 503 says why not.",
        "operationId": "getHealth",
        "x-openapi-router-controller": "cms_mock.handlers.service",
        "security": [],
        "responses": {
            "200": {"description": "The store works.", "content": {"application/json": {"schema": _HEALTH_SCHEMA}}},
            "503": {"description": "The store cannot work now, and why.", "content": {"application/json": {"schema": _HEALTH_SCHEMA}}},
        },
    },
}


def served(spec: dict[str, Any], resource: Resource | None = None) -> dict[str, Any]:
    """``spec`` with the engine's health check if it lacks one, and with ``resource`` (a user's
    spec's) the statuses each operation may answer that it does not declare (a copy: ``spec``
    is left as it is). The built-in specs declare all they answer."""
    paths = dict(spec.get("paths", {}))
    if HEALTH not in paths:
        paths[HEALTH] = copy.deepcopy(_HEALTH)
    if resource is not None:
        for template, item in list(paths.items()):
            paths[template] = {
                key: _answerable(template, value, resource, spec.get("security", [])) if key in METHODS else value for key, value in item.items()
            }
    return {**spec, "paths": paths}


def _answerable(template: str, operation: dict[str, Any], resource: Resource, security: list[dict[str, Any]]) -> dict[str, Any]:
    """``operation`` with the statuses the engine may answer for it that it does not declare
    (a ``default`` declares them all; ``security``: the spec's, which the operation's own
    replaces), and the headers its success carries."""
    declared = {str(code) for code in operation.get("responses", {})}
    role = resource.roles.get(operation.get("operationId", ""))
    responses = dict(operation.get("responses", {}))
    if "default" not in declared:
        for status, description in _statuses(template, operation, role, operation.get("security", security), declared).items():
            if status not in declared and f"{status[0]}XX" not in declared:
                responses[status] = {"description": description, ADDED: True, "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}}}
        if role in ("read", "list") and "304" not in declared:
            responses["304"] = {"description": "The record or list is still the version If-None-Match names; no body.", ADDED: True}
    success = next((status for status in sorted(declared) if status.startswith("2")), None)
    if role is not None and role != "delete" and success is not None and "$ref" not in responses[success]:  # a shared response is left as it is
        responses[success] = _with_headers(responses[success], _HEADERS[role])
    return {**operation, "responses": responses}


_HEADER = {
    "ETag": ("The version of what was answered, a strong tag: If-None-Match and If-Match take it.", {"type": "string"}),
    "Location": ("The new record's path, relative to this server.", {"type": "string"}),
    "X-Total-Count": ("How many records match the list's query, before the page is cut.", {"type": "integer", "minimum": 0}),
    "Link": ("The first, previous, next and last pages (RFC 8288), where the list declares the parameters that name them.", {"type": "string"}),
}
_HEADERS = {"create": ("ETag", "Location"), "read": ("ETag",), "update": ("ETag",), "list": ("ETag", "X-Total-Count", "Link")}
"""The headers each role's success may carry."""


def _with_headers(response: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """``response`` with the headers it may carry that it does not declare, each marked as added."""
    declared = {name.lower() for name in response.get("headers", {})}
    added = {name: {"description": _HEADER[name][0], "schema": _HEADER[name][1], ADDED: True} for name in names if name.lower() not in declared}
    return {**response, "headers": {**response.get("headers", {}), **added}} if added else response


def _statuses(template: str, operation: dict[str, Any], role: str | None, security: list[dict[str, Any]], declared: set[str]) -> dict[str, str]:
    """The error statuses the engine may answer for ``operation`` (of ``role`` on a resource),
    and what each means."""
    statuses = {"500": "An unexpected error; it is logged, and the body holds no traceback."}
    if security and all(security):  # an empty requirement makes credentials optional
        statuses["401"] = "The request carries none of the credentials the operation's security names (any value of them passes)."
    if "requestBody" in operation:
        statuses["413"] = "The body is larger than MAX_BODY_BYTES; it was not read."
        statuses["415"] = "The body's Content-Type is not a JSON type."
    if "requestBody" in operation or operation.get("parameters") or "{" in template:
        statuses[str(refusal(declared))] = "The request breaks the document's rules: every problem is listed, and nothing changed."
        statuses["400"] = "A path parameter is not of its declared type."
    if role is not None:
        statuses["503"] = "The store cannot do this now; the body says why, and whether anything changed."
    if role in ("read", "update", "delete"):
        statuses["404"] = "No record has this id."
    if role in ("update", "delete"):
        statuses["412"] = "If-Match names a version the record no longer is."
    return statuses


def added(spec: dict[str, Any]) -> list[str]:
    """What the engine added to ``spec``: what ``cms-mock check`` lists."""
    paths = [f"GET {path}" for path, item in spec.get("paths", {}).items() if item.get(ADDED)]
    statuses = sorted(
        {
            status
            for item in spec.get("paths", {}).values()
            if not item.get(ADDED)
            for method, operation in item.items()
            if method in METHODS
            for status, response in operation.get("responses", {}).items()
            if isinstance(response, dict) and response.get(ADDED)
        }
    )
    return paths + ([f"the statuses {', '.join(statuses)} on the operations that do not declare them"] if statuses else [])


def count_field(spec: dict[str, Any]) -> str:
    """The health answer's count of records: ``total_records`` in the health check added here, and
    ``total_customers`` in the built-in services' own, as their seeds name it."""
    return "total_records" if spec["paths"][HEALTH].get(ADDED) else "total_customers"
