"""The request gate: only declared operations reach connexion, by their declared path, with
path parameters of their type and a ``Content-Type`` connexion reads as the spec means it.

Without it, connexion's routers answer a trailing-slash variant of a declared path
(``/health/``) with a 307 whose ``Location`` is built from the request's ``Host`` header;
route ``/api/customers%2F<id>`` as ``/api/customers/<id>``; a body-less operation sent
``multipart/form-data`` fails parsing a form it never uses; and a JSON body typed
``Application/JSON``, or not typed at all, bypasses the body validator (its lookup is
case-sensitive) and reaches the handler as bytes. Media types are case-insensitive
(RFC 9110), and FastAPI, the seed's framework, reads an untyped body as JSON: so does this.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from cms_mock.errors import ApiError
from cms_mock.spec_routes import SpecRoutes

_CONTENT_TYPE = b"content-type"

Headers = list[tuple[bytes, bytes]]


def normalise_content_type(headers: Headers, takes_body: bool) -> Headers:
    """The headers an operation's validator should see: none for a body it ignores, else a
    lower-case media type, parameters kept: ``application/json`` when none was given or for a
    structured-syntax JSON type (``application/vnd.api+json``, RFC 6839), which is JSON too."""
    others = [(name, value) for name, value in headers if name != _CONTENT_TYPE]
    if not takes_body:
        return others if len(others) != len(headers) else headers
    given = next((value for name, value in headers if name == _CONTENT_TYPE), b"")
    media_type, separator, parameters = given.partition(b";")
    media_type = media_type.strip().lower()
    if not media_type or (media_type.startswith(b"application/") and media_type.endswith(b"+json")):
        media_type = b"application/json"
    return [*others, (_CONTENT_TYPE, media_type + separator + parameters)]


class RequestGate:
    """Answers 404 for a path the spec does not declare, 405 for a method it does not declare
    there, 400 for a typed path parameter that is not of its type; rewrites aliases and
    content types.

    ``passthrough``: path prefixes served by something other than the spec (the Swagger UI's
    assets). Sits inside connexion's exception handling, so the 404 has the contract's shape,
    and hands on a copy of the scope, so the access log outside still shows the path as sent.
    """

    def __init__(self, app: ASGIApp, routes: SpecRoutes, passthrough: str) -> None:
        self.app = app
        self.routes = routes
        self.passthrough = passthrough

    def _passes(self, path: str) -> bool:
        return path == self.passthrough or path.startswith(self.passthrough + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = self.routes.canonical(scope["path"])
        if b"%2f" in scope.get("raw_path", b"").lower():  # an encoded slash is data in a segment, never a separator
            raise ApiError("Not Found", status=404)
        if not self.routes.known(path):
            if not self._passes(path):
                raise ApiError("Not Found", status=404)
            await self.app(scope, receive, send)
            return
        operation = self.routes.operation(scope["method"], path)
        if operation is None:
            raise ApiError("Method Not Allowed", status=405, headers={"Allow": self.routes.allowed(path)})
        problem = self.routes.bad_parameter(path)
        if problem is not None:
            raise problem
        headers = normalise_content_type(scope["headers"], takes_body="requestBody" in operation)
        if path != scope["path"] or headers is not scope["headers"]:
            scope = {**scope, "path": path, "raw_path": path.encode(), "headers": headers}
        await self.app(scope, receive, send)
