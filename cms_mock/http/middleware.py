"""ASGI middleware of our own: the access log, the request body limit and the API key."""

from __future__ import annotations

import hmac
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cms_mock.errors import ApiError, BodyTooLarge
from cms_mock.logs import printable
from cms_mock.openapi.routes import SpecRoutes

access_logger = logging.getLogger("cms_mock.access")


class AccessLog:
    """Logs method, path, status and duration once the response has been sent.

    Sits outside connexion's exception handling, so error responses are logged too. A request
    that got no response because its client left first is logged as 499 (nginx's "client
    closed request"); an exception that escapes every handler, as 500.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access_logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 499

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        except BaseException:
            if status == 499:  # nothing was sent: whatever answers it now (uvicorn) answers 500
                status = 500
            raise
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            access_logger.info("%s %s %d %.2fms", printable(scope["method"]), printable(scope["path"]), status, elapsed_ms)


class BodyLimit:
    """Answers 413 for a body over ``max_bytes``, before it is read into memory whole.

    A declared ``Content-Length`` is refused at once; a chunked body is counted as it streams.
    Sits inside connexion's exception handling, so the 413 has the contract's shape.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, receive_limited, send)


class ApiKeyGuard:
    """With ``API_KEY`` set: writes to the operations the spec secures need ``X-API-Key`` (reads
    too with ``API_KEY_READS``, and every call under ``always_under``: the control plane). The key is compared in constant time, so timing tells nothing.
    """

    _READS = frozenset({"GET", "HEAD"})

    def __init__(self, app: ASGIApp, key: str, reads: bool, routes: SpecRoutes, always_under: str) -> None:
        self.app = app
        self.key = key.encode()
        self.reads = reads
        self.routes = routes
        self.always_under = always_under  # the control plane: reads need the key too

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reads = self.reads or scope.get("path", "").startswith(self.always_under)
        if scope["type"] == "http" and (reads or scope["method"] not in self._READS) and self.routes.secured(scope["method"], scope["path"]):
            provided = next((value for name, value in scope["headers"] if name == b"x-api-key"), b"")
            if not hmac.compare_digest(provided, self.key):
                raise ApiError("Missing or invalid API key", status=401, headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'})
        await self.app(scope, receive, send)
