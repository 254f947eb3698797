"""What the engine answers beyond a user's spec, declared in the document it serves.

A spec written for another server does not declare the engine's health check; the document the
engine serves (and routes, and validates by) is the user's spec with it added, marked
``x-cms-mock-added: true`` so that a reader can tell the user's operations from the engine's,
and "never answer what the served spec does not declare" stays true. The user's file is never
changed. A spec that declares the path itself keeps its own.
"""

from __future__ import annotations

import copy
from typing import Any

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


def served(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with the engine's operations it lacks added (a copy: ``spec`` is left as it is)."""
    if HEALTH in spec.get("paths", {}):
        return spec
    return {**spec, "paths": {**spec.get("paths", {}), HEALTH: copy.deepcopy(_HEALTH)}}


def added(spec: dict[str, Any]) -> list[str]:
    """The paths of ``spec`` the engine added: what ``cms-mock check`` lists."""
    return [path for path, item in spec.get("paths", {}).items() if item.get(ADDED)]


def count_field(spec: dict[str, Any]) -> str:
    """The health answer's count of records: ``total_records`` in the health check added here, and
    ``total_customers`` in the built-in services' own, as their seeds name it."""
    return "total_records" if spec["paths"][HEALTH].get(ADDED) else "total_customers"
