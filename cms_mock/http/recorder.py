"""What the service sees of its traffic: each request journaled and counted (coverage, metrics),
and the metrics page.

``Recorder`` sits outside connexion's exception handling, beside the access log, so it sees
every answer as it was sent, errors and injected faults included. An entry is recorded before
the last part of its answer is sent: a client that has its answer finds its request in the
journal. Recording never changes an answer: whatever goes wrong with it is logged, and the
answer is sent whole.

An entry is bounded in bytes as it is stored (its JSON form), whatever a client sends: each
body up to ``BODY_LIMIT``, each message's headers up to ``HEADERS_LIMIT``, the path and the
query up to ``TEXT_LIMIT`` each; a JSON body nested deeper than ``BODY_DEPTH`` levels is cut
there. What is cut is marked: the message's ``truncated`` is true. Numbers are kept exact
(``exactjson``), so a JSON body's value is its value, however large its integers.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cms_mock import exactjson, metrics
from cms_mock.errors import StoreUnavailable
from cms_mock.http.gate import REACHED
from cms_mock.openapi.routes import METHODS
from cms_mock.state import Entry, entry_id, now

logger = logging.getLogger(__name__)

BODY_LIMIT = 64 * 1024
"""The most bytes a body takes in its entry (a text's two quotes aside)."""
HEADERS_LIMIT = 16 * 1024
"""The most bytes a message's headers take in its entry: the first that fit are kept."""
TEXT_LIMIT = 8 * 1024
"""The most bytes the path, and the query, take in an entry."""
BODY_DEPTH = 128
"""The deepest nesting of a body kept: deeper arrays and objects are kept as null. Deeper than a
real body needs, and well within what ``exactjson`` writes on its fast path (``DEPTH``), with
room for the entry and the answers that list it around the body."""
ENTRY_LIMIT = 2 * (BODY_LIMIT + 2 + HEADERS_LIMIT) + 2 * TEXT_LIMIT + 1024
"""The most bytes an entry takes: its messages, path and query, and its other fields (an id,
a time, a method, an operationId, a status, a duration: well under 1 KiB)."""
METRICS_PATH = "/metrics"
_METHODS = frozenset(method.upper() for method in METHODS)
_ESCAPED = 6
"""The most bytes a character takes in JSON (a control character, ``\\u0001``)."""
_WRITTEN_OUT = 5
"""More than the most a JSON value grows when written out again: a number by 4.5 times
(``1E15`` is ``1000000000000000.0``), a string, a literal or white space not at all. A body
under a fifth of ``BODY_LIMIT`` fits as its value without being written out to see."""


def _fit(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut until its JSON form fits ``limit`` bytes, and whether it was cut."""
    if len(text) * _ESCAPED + 2 <= limit:
        return text, False
    cut = False
    while (encoded := len(orjson.dumps(text))) > limit:
        text, cut = text[: len(text) * limit // encoded], True
    return text, cut


def _headers(raw: list[tuple[bytes, bytes]]) -> tuple[dict[str, str], bool]:
    """Names in lower case, a repeated header's values joined by ``, ``; the first that fit
    ``HEADERS_LIMIT`` in JSON, and whether some were left out."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    if len(orjson.dumps(headers)) <= HEADERS_LIMIT:
        return headers, False
    kept: dict[str, str] = {}
    size = 2  # the braces
    for key, text in headers.items():
        size += len(orjson.dumps(key)) + len(orjson.dumps(text)) + 2  # a colon, a comma
        if size > HEADERS_LIMIT:
            break
        kept[key] = text
    return kept, True


def _deeper_than(raw: bytes, levels: int) -> bool:
    """Whether a JSON document may be nested deeper than ``levels``: it cannot be unless it
    holds more brackets than that, and twice as many bytes."""
    return len(raw) > 2 * levels and raw.count(b"[") + raw.count(b"{") > levels


def _cut(value: Any, levels: int) -> tuple[Any, bool]:
    """``value`` with its arrays and objects below ``levels`` levels kept as null, and whether any was."""
    if not isinstance(value, list | dict):
        return value, False
    if levels == 0:
        return None, True
    if isinstance(value, dict):
        kept = {key: _cut(inner, levels - 1) for key, inner in value.items()}
        return {key: inner for key, (inner, _) in kept.items()}, any(cut for _, cut in kept.values())
    items = [_cut(inner, levels - 1) for inner in value]
    return [inner for inner, _ in items], any(cut for _, cut in items)


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

    def shown(self, headers: dict[str, str], cut: bool) -> dict[str, Any]:
        """The message as its entry keeps it (``cut``: its headers, path or query were). A JSON
        body as its value, cut at ``BODY_DEPTH``, when that fits ``BODY_LIMIT`` in JSON; anything
        else, or JSON cut short or longer written out than sent (``1E15`` is written
        ``1000000000000000.0``), as text cut to fit; nothing as null."""
        raw = b"".join(self.parts)
        if not raw:
            return {"headers": headers, "body": None, "truncated": cut or self.truncated}
        if not self.truncated and "json" in headers.get("content-type", "application/json"):
            with contextlib.suppress(ValueError):
                value = exactjson.loads(raw)
                if _deeper_than(raw, BODY_DEPTH):
                    value, deep = _cut(value, BODY_DEPTH)
                    cut = cut or deep
                if len(raw) * _WRITTEN_OUT <= BODY_LIMIT or len(exactjson.dumps(value)) <= BODY_LIMIT:
                    return {"headers": headers, "body": value, "truncated": cut}
                cut = True
        text, shortened = _fit(raw.decode("utf-8", "replace"), BODY_LIMIT + 2)
        return {"headers": headers, "body": text, "truncated": cut or self.truncated or shortened}


class Recorder:
    """Journals every request to the service's own paths (not those under ``skip``: the control
    plane, the metrics page) into its ``ServiceState``, counts it for coverage there, and in the metrics.

    ``coverage``: whether to record into the state at all (the control plane that reads it is
    on); ``journal``: whether entries are kept there (else only the operation and status are
    counted, and no body or header is captured); ``metrics``: whether to count in the metrics.
    A failure to record (a database down, anything else) is logged; the answer is sent as it is.
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
        answer: dict[str, Any] = {"status": 499, "headers": []}
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
            try:
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
                    entry = _entry(scope, at, elapsed, answer, operation, (request, response))
                await scope["state"]["runtime"].state.record(entry)
            except (StoreUnavailable, OSError) as exc:
                logger.warning("a request could not be journaled: %s", getattr(exc, "reason", exc))
            except Exception:  # recording must never break an answer: it is sent whole
                logger.exception("a request could not be recorded")

        async def send_recorded(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                if self.journal:
                    answer["headers"] = message.get("headers", [])
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


def _entry(scope: Scope, at: str, elapsed: float, answer: dict[str, Any], operation: str | None, bodies: tuple[_Body, _Body]) -> Entry:
    """A journal entry within ``ENTRY_LIMIT``: a request cut anywhere (its path, query, headers
    or body) is marked ``truncated``."""
    path, long_path = _fit(scope["path"], TEXT_LIMIT)
    query, long_query = _fit(scope["query_string"].decode("latin-1"), TEXT_LIMIT)
    request_headers, many_sent = _headers(scope["headers"])
    response_headers, many_answered = _headers(answer["headers"])
    return {
        "id": entry_id(),
        "time": at,
        "method": scope["method"],
        "path": path,
        "query": query,
        "operationId": operation,
        "status": answer["status"],
        "duration_ms": round(elapsed * 1000, 3),
        "request": bodies[0].shown(request_headers, long_path or long_query or many_sent),
        "response": bodies[1].shown(response_headers, many_answered),
    }


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
