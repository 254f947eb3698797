"""What a journal entry keeps of a request and its answer, taken as they pass through the recorder.

An entry is bounded in bytes as it is stored (its JSON form), whatever a client sends: each
body up to ``BODY_LIMIT``, each message's headers up to ``HEADERS_LIMIT``, the path and the
query up to ``TEXT_LIMIT`` each; a JSON body nested deeper than ``BODY_DEPTH`` levels is cut
there. What is cut is marked: the message's ``truncated`` is true. Numbers are kept exact
(``exactjson``), so a JSON body's value is its value, however large its integers.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import orjson
from starlette.types import Message, Scope

from cms_mock import exactjson
from cms_mock.state import Entry, entry_id, now

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

    def journaled(self, headers: dict[str, str], cut: bool) -> dict[str, Any]:
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


class Capture:
    """One request and its answer as they pass, from its arrival: the answer's status, and with
    ``messages`` the first ``BODY_LIMIT`` bytes of each body and the answer's headers (without,
    no body or header is held)."""

    def __init__(self, scope: Scope, messages: bool) -> None:
        self.scope = scope
        self.started, self.at = time.perf_counter(), now()
        self.status = 499
        """What was answered; 499 (nginx's "client closed request") until an answer starts."""
        self._messages = messages
        self._answer_headers: list[tuple[bytes, bytes]] = []
        self._request, self._response = _Body(), _Body()

    def received(self, message: Message) -> None:
        if message["type"] == "http.request" and self._messages:
            self._request.add(message.get("body", b""))

    def sent(self, message: Message) -> bool:
        """Whether ``message`` is the last part of the answer."""
        if message["type"] == "http.response.start":
            self.status = message["status"]
            if self._messages:
                self._answer_headers = message.get("headers", [])
            return False
        if message["type"] != "http.response.body":
            return False
        if self._messages:
            self._response.add(message.get("body", b""))
        return not message.get("more_body", False)

    def failed(self) -> None:
        """The app raised: with nothing sent yet, the server answers 500."""
        if self.status == 499:
            self.status = 500

    def elapsed(self) -> float:
        """Seconds since the request arrived."""
        return time.perf_counter() - self.started

    def entry(self, operation: str | None, elapsed: float) -> Entry:
        """A journal entry within ``ENTRY_LIMIT``: a request cut anywhere (its path, query,
        headers or body) is marked ``truncated``."""
        path, long_path = _fit(self.scope["path"], TEXT_LIMIT)
        query, long_query = _fit(self.scope["query_string"].decode("latin-1"), TEXT_LIMIT)
        request_headers, many_sent = _headers(self.scope["headers"])
        response_headers, many_answered = _headers(self._answer_headers)
        return {
            "id": entry_id(),
            "time": self.at,
            "method": self.scope["method"],
            "path": path,
            "query": query,
            "operationId": operation,
            "status": self.status,
            "duration_ms": round(elapsed * 1000, 3),
            "request": self._request.journaled(request_headers, long_path or long_query or many_sent),
            "response": self._response.journaled(response_headers, many_answered),
        }
