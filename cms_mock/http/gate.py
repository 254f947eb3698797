"""The request gate: only declared operations reach connexion, by their declared path, with
path parameters their schemas accept and a ``Content-Type`` connexion reads as the spec means it.

Without it, connexion's routers answer a trailing-slash variant of a declared path
(``/health/``) with a 307 whose ``Location`` is built from the request's ``Host`` header;
route ``/api/customers%2F<id>`` as ``/api/customers/<id>``; a body-less operation sent
``multipart/form-data`` fails parsing a form it never uses; and a JSON body typed
``Application/JSON``, or not typed at all, bypasses the body validator (its lookup is
case-sensitive) and reaches the handler as bytes. Media types are case-insensitive
(RFC 9110), and FastAPI, the seed's framework, reads an untyped body as JSON: so does this.
"""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from cms_mock.errors import ApiError
from cms_mock.logs import printable
from cms_mock.openapi.routes import SpecRoutes

logger = logging.getLogger(__name__)

OPERATION = "cms_mock.operation"
"""A scope key: the ``operationId`` the request reached, for what runs after the gate."""

REACHED = "cms_mock.reached"
"""A scope key: a dict the recorder outside puts there, where the gate writes the ``operationId``
a request reached (the gate finds it anyway; the recorder would look it up again)."""

_CONTENT_TYPE = b"content-type"
_JSON = b"application/json"

Headers = list[tuple[bytes, bytes]]


def normalise_content_type(headers: Headers, takes_body: bool) -> Headers:
    """The headers an operation's validator should see: none for a body it ignores, else a
    lower-case media type, parameters kept: ``application/json`` when none was given or for a
    structured-syntax JSON type (``application/vnd.api+json``, RFC 6839), which is JSON too.
    ``headers`` itself when nothing changes."""
    given = [value for name, value in headers if name == _CONTENT_TYPE]
    if not takes_body:
        return [(name, value) for name, value in headers if name != _CONTENT_TYPE] if given else headers
    media_type, separator, parameters = (given[0] if given else b"").partition(b";")
    media_type = media_type.strip().lower()
    if not media_type or (media_type.startswith(b"application/") and media_type.endswith(b"+json")):
        media_type = _JSON
    value = media_type + separator + parameters
    if given == [value]:
        return headers
    return [*((name, v) for name, v in headers if name != _CONTENT_TYPE), (_CONTENT_TYPE, value)]


class RequestGate:
    """Answers 404 for a path the spec does not declare, 405 for a method it does not declare
    there, 400 for an integer path parameter its schema refuses; rewrites aliases and content
    types; and lets a client that leaves mid-body go without an answer nobody would read.

    Says which operation a request reached: in the scope it hands on (``OPERATION``, for the
    fault injector) and to the recorder outside (``REACHED``).

    ``assets``: the path prefix of what is served beside the spec (the Swagger UI's files).
    Sits inside connexion's exception handling, so its errors have the contract's shape, and
    hands on a copy of the scope, so the access log outside still shows the path as sent.
    """

    def __init__(self, app: ASGIApp, routes: SpecRoutes, assets: str) -> None:
        self.app = app
        self.routes = routes
        self.assets = assets.rstrip("/") + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # no operation is one; ``cms-mock`` runs uvicorn with ws="none" so none comes
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = self.routes.canonical(scope["path"])
        if b"%2f" in (scope.get("raw_path") or b"").lower():  # an encoded slash is data in a segment, never a separator
            raise ApiError("Not Found", status=404)
        found = self.routes.find(path)
        if found is None:
            if not path.startswith(self.assets):
                raise ApiError("Not Found", status=404)
            await self.app(scope, receive, send)
            return
        operation = found.operation(scope["method"])
        if operation is None:
            raise ApiError("Method Not Allowed", status=405, headers={"Allow": found.allowed})
        if REACHED in scope:
            scope[REACHED]["operationId"] = operation.get("operationId")
        problem = found.bad_parameter()
        if problem is not None:
            raise problem
        headers = normalise_content_type(scope["headers"], takes_body="requestBody" in operation)
        scope = {**scope, OPERATION: operation.get("operationId")}
        if path != scope["path"]:
            scope["path"], scope["raw_path"] = path, path.encode()  # an alias: a declared path, ASCII
        if headers is not scope["headers"]:
            scope["headers"] = headers
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            logger.info("client left %s %s before sending its whole body; nothing was done", scope["method"], printable(scope["path"]))
