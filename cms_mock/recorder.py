"""What the service sees of its traffic: each request journaled and counted (coverage, metrics),
and the metrics page.

``Recorder`` sits outside connexion's exception handling, beside the access log, so it sees
every answer as it was sent, errors and injected faults included. An entry is recorded before
the last part of its answer is sent: a client that has its answer finds its request in the
journal. Bodies are kept up to ``BODY_LIMIT`` bytes each, so an entry's size is bounded
whatever a client sends; a body cut short is kept as text and marked ``truncated``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cms_mock import metrics
from cms_mock.errors import StoreUnavailable
from cms_mock.gate import REACHED
from cms_mock.spec_routes import METHODS
from cms_mock.state import Entry, entry_id, now

logger = logging.getLogger(__name__)

BODY_LIMIT = 64 * 1024
METRICS_PATH = "/metrics"
_METHODS = frozenset(method.upper() for method in METHODS)


class _Body:
    """The first ``BODY_LIMIT`` bytes of a body, and whether there were more."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        room = BODY_LIMIT - self.size
        if len(chunk) > room:
            self.truncated = True
            chunk = chunk[:room]
        if chunk:
            self.parts.append(chunk)
            self.size += len(chunk)

    def shown(self, headers: dict[str, str]) -> dict[str, Any]:
        """JSON as its value; anything else, or JSON cut short, as text; nothing as null. Text
        is cut further until its JSON form fits ``BODY_LIMIT`` (a control character is six
        bytes there): the bound holds on disk and in the database, not only in memory."""
        raw = b"".join(self.parts)
        body: Any = None
        truncated = self.truncated
        if raw:
            if not truncated and "json" in headers.get("content-type", "application/json"):
                with contextlib.suppress(orjson.JSONDecodeError):
                    return {"headers": headers, "body": orjson.loads(raw), "truncated": False}
            body = raw.decode("utf-8", "replace")
            while (encoded := len(orjson.dumps(body))) > BODY_LIMIT + 2:
                body, truncated = body[: len(body) * BODY_LIMIT // encoded], True
        return {"headers": headers, "body": body, "truncated": truncated}


def _headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


class Recorder:
    """Journals every request to the service's own paths (not those under ``skip``: the control
    plane, the metrics page) into its ``ServiceState``, counts it for coverage there, and in the metrics.

    ``coverage``: whether to record into the state at all (the control plane that reads it is
    on); ``journal``: whether entries are kept there (else only the operation and status are
    counted, and no body or header is captured); ``metrics``: whether to count in the metrics.
    A failure to record (a database down) is logged; the answer is sent as it is.
    """

    def __init__(self, app: ASGIApp, service: str, skip: tuple[str, ...], coverage: bool, journal: bool, metrics: bool) -> None:
        self.app = app
        self.service = service
        self.skip = skip
        self.coverage = coverage
        self.journal = coverage and journal
        self.metrics = metrics
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(scope["path"] == skip or scope["path"].startswith(skip + "/") for skip in self.skip):
            await self.app(scope, receive, send)
            return
        started, at = time.perf_counter(), now()
        request, response = _Body(), _Body()
        answer: dict[str, Any] = {"status": 499, "headers": {}}
        reached: dict[str, str | None] = {}
        scope = {**scope, REACHED: reached}  # the request gate says which operation it reached
        recorded = False

        async def receive_recorded() -> Message:
            message = await receive()
            if message["type"] == "http.request" and self.journal:
                request.add(message.get("body", b""))
            return message

        async def record() -> None:
            nonlocal recorded
            recorded = True
            operation = reached.get("operationId")
            status, elapsed = answer["status"], time.perf_counter() - started
            if self.metrics:
                counted, timed = self._figures(operation or "", scope["method"], status)
                counted.inc()
                timed.observe(elapsed)
            if not self.coverage:
                return
            entry: Entry = {"operationId": operation, "status": status}
            if self.journal:
                entry = {
                    "id": entry_id(),
                    "time": at,
                    "method": scope["method"],
                    "path": scope["path"],
                    "query": scope["query_string"].decode("latin-1"),
                    "operationId": operation,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "request": request.shown(_headers(scope["headers"])),
                    "response": response.shown(answer["headers"]),
                }
            try:
                await scope["state"]["runtime"].state.record(entry)
            except (StoreUnavailable, OSError) as exc:
                logger.warning("a request could not be journaled: %s", getattr(exc, "reason", exc))

        async def send_recorded(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                if self.journal:
                    answer["headers"] = _headers(message.get("headers", []))
            elif message["type"] == "http.response.body":
                if self.journal:
                    response.add(message.get("body", b""))
                if not message.get("more_body", False) and not recorded:
                    await record()
            await send(message)

        try:
            await self.app(scope, receive_recorded, send_recorded)
        except BaseException:
            if answer["status"] == 499:  # nothing was sent: uvicorn answers 500
                answer["status"] = 500
            raise
        finally:
            if not recorded:  # the client left, or the app failed, before the answer ended
                await record()

    def _figures(self, operation: str, method: str, status: int) -> tuple[Any, Any]:
        """The counter and histogram of these labels, looked up once (``labels`` takes a lock
        and builds a key each time). A method the spec does not know is counted as ``other``: what
        clients send must not make the series, or this cache, grow without bound."""
        method = method if method in _METHODS else "other"
        key = (operation, method, status)
        children = self._children.get(key)
        if children is None:
            children = (metrics.REQUESTS.labels(self.service, operation, method, str(status)), metrics.DURATION.labels(self.service, operation))
            self._children[key] = children
        return children


class MetricsPage:
    """``GET /metrics``: the figures of every worker (``metrics.render``), the record count read
    from the store as it is scraped."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != METRICS_PATH or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        with contextlib.suppress(StoreUnavailable):  # the other figures are worth having; the count keeps its last value
            metrics.RECORDS.labels(self.service).set(await scope["state"]["runtime"].store.count())
        body = metrics.render()
        headers = [(b"content-type", metrics.CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
