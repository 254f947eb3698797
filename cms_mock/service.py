"""Handlers every service shares: service info and health."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from cms_mock.runtime import current, json_response


async def get_service_info() -> Response:
    runtime = current()
    info = {
        "name": runtime.title,
        "version": runtime.version,
        "docs": "/docs",
        "health": "/health",
        "openapi": "/openapi.json",
    }
    return json_response(orjson.dumps(info))


async def get_health() -> Response:
    """Healthy only when the store can still read and write its file; 503 says why not."""
    runtime = current()
    problem = runtime.store.problem()
    health: dict[str, object] = {
        "status": "unhealthy" if problem else "healthy",
        "service": runtime.title,
        "total_customers": runtime.store.count(),
    }
    if problem:
        health["reason"] = problem
    return json_response(orjson.dumps(health), 503 if problem else 200)
