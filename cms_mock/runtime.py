"""What a handler needs while it runs: the store and the spec, reached through the request."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from connexion import request
from starlette.responses import Response, StreamingResponse

from cms_mock.store import Store


@dataclasses.dataclass(frozen=True)
class Runtime:
    """Opened in the app's lifespan; one per app, so tests never share state."""

    spec: dict[str, Any]
    store: Store

    @property
    def title(self) -> str:
        return self.spec["info"]["title"]  # type: ignore[no-any-return]

    @property
    def version(self) -> str:
        return self.spec["info"]["version"]  # type: ignore[no-any-return]

    def pick(self, schema_name: str, body: dict[str, Any]) -> dict[str, Any]:
        """The body's values for the fields the schema declares, in its order; the rest is ignored.

        A field left out takes its value from the schema's ``x-defaults``, if it has one there
        (the spec keeps defaults out of the ``default`` keyword, which generated TypeScript
        types turn into required fields).
        """
        schema = self.spec["components"]["schemas"][schema_name]
        defaults = schema.get("x-defaults", {})
        return {name: body[name] if name in body else defaults[name] for name in schema["properties"] if name in body or name in defaults}


def current() -> Runtime:
    return request.state.runtime  # type: ignore[no-any-return]


_STREAM_OVER = 1024 * 1024
_SLICE = 128 * 1024


def json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A response from JSON the store already serialised: nothing is encoded twice.

    A large body (the list of 100,000 customers is 35 MB) goes out in slices of the cached
    bytes: sent whole, each slow connection would hold its own copy in its transport buffer
    (50 connections, 1.7 GB); in slices, uvicorn's flow control holds one slice at a time.
    """
    if len(body) <= _STREAM_OVER:
        return Response(content=body, status_code=status, media_type="application/json", headers=headers)
    view = memoryview(body)

    async def slices() -> AsyncIterator[memoryview]:
        for start in range(0, len(view), _SLICE):
            yield view[start : start + _SLICE]

    return StreamingResponse(slices(), status_code=status, media_type="application/json", headers={**(headers or {}), "Content-Length": str(len(body))})
