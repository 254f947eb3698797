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
from cms_mock.openapi.routes import Found, SpecRoutes

logger = logging.getLogger(__name__)

REACHED = "cms_mock.reached"
"""A key of the request's ``state``: the ``operationId`` the request reached, set once by the gate
for what runs after it (the fault injector) and for the recorder outside it (``state`` is the one
part of the scope every middleware hands on as it is; the recorder would look it up again)."""

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


def reached(scope: Scope) -> str | None:
    """The ``operationId`` an HTTP request reached: None before the gate, or when it reached none."""
    operation: str | None = scope["state"].get(REACHED)
    return operation


class RequestGate:
    """Answers 404 for a path the spec does not declare, 405 for a method it does not declare
    there, 400 for an integer path parameter its schema refuses; rewrites aliases and content
    types; and lets a client that leaves mid-body go without an answer nobody would read.

    Says which operation a request reached, once, in the request's ``state`` (``REACHED``, read
    by ``reached``): for the fault injector after it and the recorder outside it, which
    journals it whatever answers, a 415 from connexion or a 413 from the body limit included.

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
        found = self._declared(scope, path)
        if found is None:
            await self.app(scope, receive, send)
            return
        operation = found.operation(scope["method"])
        if operation is None:
            raise ApiError("Method Not Allowed", status=405, headers={"Allow": found.allowed})
        scope["state"][REACHED] = operation.get("operationId")
        problem = found.bad_parameter()
        if problem is not None:
            raise problem
        try:
            await self.app(_handed_on(scope, path, "requestBody" in operation), receive, send)
        except ClientDisconnect:
            logger.info("client left %s %s before sending its whole body; nothing was done", scope["method"], printable(path))

    def _declared(self, scope: Scope, path: str) -> Found | None:
        """The declared path ``path`` (the request's, an alias made canonical) is, or None for one
        of the assets; raises 404 for any other."""
        if b"%2f" in (scope.get("raw_path") or b"").lower():  # an encoded slash is data in a segment, never a separator
            raise ApiError("Not Found", status=404)
        found = self.routes.find(path)
        if found is None and not path.startswith(self.assets):
            raise ApiError("Not Found", status=404)
        return found


def _handed_on(scope: Scope, path: str, takes_body: bool) -> Scope:
    """A copy of ``scope`` with the declared ``path`` (an alias: a declared path, ASCII) and the
    content type the operation's validator should see."""
    handed: Scope = {**scope}
    if path != scope["path"]:
        handed["path"], handed["raw_path"] = path, path.encode()
    headers = normalise_content_type(scope["headers"], takes_body)
    if headers is not scope["headers"]:
        handed["headers"] = headers
    return handed
