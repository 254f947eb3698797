"""What a handler needs while it runs: the store and the spec, reached through the request."""

from __future__ import annotations

import dataclasses
from typing import Any

from connexion import request
from starlette.responses import Response

from cms_mock.store import Store


@dataclasses.dataclass(frozen=True)
class Runtime:
    """Opened in the app's lifespan; one per app, so tests never share state."""

    title: str
    version: str
    spec: dict[str, Any]
    store: Store

    def pick(self, schema_name: str, body: dict[str, Any], *, defaults: bool = False) -> dict[str, Any]:
        """The body's values for the fields the schema declares, in its order; the rest is ignored."""
        properties = self.spec["components"]["schemas"][schema_name]["properties"]
        fields = {}
        for name, schema in properties.items():
            if name in body:
                fields[name] = body[name]
            elif defaults and "default" in schema:
                fields[name] = schema["default"]
        return fields


def current() -> Runtime:
    return request.state.runtime  # type: ignore[no-any-return]


def json_response(body: bytes, status: int = 200) -> Response:
    """A response from JSON the store already serialised: nothing is encoded twice."""
    return Response(content=body, status_code=status, media_type="application/json")
