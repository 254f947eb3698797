"""Handlers every service shares: service info and health."""

from __future__ import annotations

import orjson
from connexion import request
from starlette.responses import Response

from cms_mock.errors import StoreUnavailable
from cms_mock.handlers.runtime import current, json_response


def _quality(accept: str, media_type: str) -> float:
    """The q-value ``accept`` gives ``media_type``, from its most specific matching range (RFC 9110)."""
    kind = media_type.split("/")[0]
    best, specificity = 0.0, -1
    for item in accept.split(","):
        media_range, *parameters = (part.strip() for part in item.split(";"))
        rank = {media_type: 2, f"{kind}/*": 1, "*/*": 0}.get(media_range.lower(), -1)
        if rank > specificity:
            q = next((p[2:] for p in parameters if p.lower().startswith("q=")), "1")
            try:
                best, specificity = float(q), rank
            except ValueError:
                continue
    return best


def prefers_html(accept: str) -> bool:
    """A browser's ``Accept`` (``text/html,...,*/*;q=0.8``) prefers HTML; curl's ``*/*`` does not."""
    return _quality(accept, "text/html") > _quality(accept, "application/json")


_VARY = {"Vary": "Accept"}  # the answer depends on Accept: no cache may give a browser's to a JSON client


async def get_service_info() -> Response:
    if prefers_html(request.headers.get("accept", "")):
        return Response(status_code=303, headers={"Location": "/docs", **_VARY})
    runtime = current()
    info = {
        "name": runtime.title,
        "version": runtime.version,
        "docs": "/docs",
        "health": "/health",
        "openapi": "/openapi.json",
    }
    return json_response(orjson.dumps(info), headers=_VARY)


async def get_health() -> Response:
    """Healthy only when the store can read and write now; 503 says why not (and leaves out
    the count when the store cannot give it, rather than guess)."""
    runtime = current()
    health: dict[str, object] = {"status": "healthy", "service": runtime.title}
    try:  # a store that cannot count says why at once: no second wait for the same outage
        health[runtime.count_field] = await runtime.store.count()
        problem = await runtime.store.problem()
    except StoreUnavailable as exc:
        problem = exc.reason
    if problem:
        health.update(status="unhealthy", reason=problem)
    return json_response(orjson.dumps(health), 503 if problem else 200)
