"""What a handler needs while it runs: the store and the spec, reached through the request."""

from __future__ import annotations

import dataclasses
import logging
import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from connexion import request
from starlette.responses import Response, StreamingResponse

from cms_mock.errors import StoreUnavailable
from cms_mock.http.conditions import etag, if_match, list_etag, not_modified
from cms_mock.http.faults import Faults
from cms_mock.openapi.collection import Collection, page_headers
from cms_mock.openapi.schemas import named
from cms_mock.state import ServiceState
from cms_mock.stores import Check, Listing, Records, RecordStore
from cms_mock.stores.records import RecordRules

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Runtime:
    """Opened in the app's lifespan; one per app, so tests never share state."""

    spec: dict[str, Any]
    store: RecordStore
    rules: RecordRules
    start_records: Callable[[], list[dict[str, Any]]]
    """What a reset puts back: the samples, or the ``FIXTURES`` file's records."""
    state: ServiceState
    """The journal, coverage counts and fault rules."""
    faults: Faults
    """The error statuses each operation declares, and the answers injected for them."""
    collection: Collection
    """What the list operation's query parameters mean."""
    count_field: str
    """What the health check calls the number of records."""

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
        schema = named(self.spec, schema_name)
        defaults = schema.get("x-defaults", {})
        return {name: body[name] if name in body else defaults[name] for name in schema["properties"] if name in body or name in defaults}


async def list_response(**params: Any) -> Response:
    """The list, or with query parameters the page they select with its ``X-Total-Count`` and
    ``Link``; an ``ETag`` whenever the answer is one moment's records (``list_etag``), and a 304
    when ``If-None-Match`` names it."""
    runtime = current()
    query = runtime.collection.query(params)
    headers: dict[str, str] = {}
    total: int | None = None
    if query is None:
        records = await runtime.store.list()
    else:
        page = await runtime.store.find(query)
        records, total = page.records, page.total
        headers = page_headers(runtime.collection, page, query, urllib.parse.quote(request.url.path), request.url.query)
    tag = list_etag(records, total) if isinstance(records, Listing) else None
    if not_modified(tag, request.headers.get("if-none-match")):
        return Response(status_code=304, headers={"ETag": tag} if tag else None)
    if tag:
        headers["ETag"] = tag
    return json_array_response(records, headers)


def json_array_response(records: Records, headers: dict[str, str] | None = None) -> Response:
    """A JSON array of items already serialised; over 1 MiB or of unknown size, streamed in
    slices built as they go.

    The slices are made from the items, not cut from one joined body: every version of a large
    list would otherwise be a body of its own, held as long as the slowest reader of it, so
    stalled readers would hold a large body each. Sent whole, each slow connection would also
    hold a copy in its transport buffer; in slices, uvicorn's flow control holds one slice at a
    time.
    """
    if isinstance(records, Listing) and records.size <= _STREAM_OVER:
        return Response(content=records.body, media_type="application/json", headers=headers)

    async def slices() -> AsyncIterator[bytes]:
        pending, length, first = [b"["], 1, True
        try:
            async for batch in records.batches():
                for part in batch:
                    if not first:
                        pending.append(b",")
                    first = False
                    pending.append(part)
                    length += len(part) + 1
                    if length >= _SLICE:
                        yield b"".join(pending)
                        pending, length = [], 0
        except StoreUnavailable as exc:  # the status is sent: breaking the connection is the only truth left
            logger.warning("a list was cut off after its answer began, and its connection broken: %s", exc.reason)
            raise
        pending.append(b"]")
        yield b"".join(pending)

    known = {"Content-Length": str(records.size)} if isinstance(records, Listing) else {}  # else chunked
    return StreamingResponse(slices(), media_type="application/json", headers={**(headers or {}), **known})


def current() -> Runtime:
    return request.state.runtime  # type: ignore[no-any-return]


_STREAM_OVER = 1024 * 1024
_SLICE = 128 * 1024


def created_response(body: bytes, collection: str, status: int = 201) -> Response:
    """The new record (with the status its operation declares: 201, or 200 in some specs), its
    ``ETag``, and ``Location``: its path under ``collection`` (RFC 9110 allows a relative
    reference; the path is the one declared, not an alias)."""
    key = urllib.parse.quote(current().rules.key(orjson.loads(body)), safe="")
    return json_response(body, status, {"Location": f"{collection}/{key}", "ETag": etag(body)})


def record_response(body: bytes) -> Response:
    """One record with its ``ETag``; a 304 with only the tag when ``If-None-Match`` names it."""
    tag = etag(body)
    if not_modified(tag, request.headers.get("if-none-match")):
        return Response(status_code=304, headers={"ETag": tag})
    return json_response(body, headers={"ETag": tag})


def changed_response(body: bytes) -> Response:
    """A changed record with its new ``ETag``."""
    return json_response(body, headers={"ETag": etag(body)})


def precondition() -> Check | None:
    """The request's ``If-Match``, as the store's check."""
    return if_match(request.headers.get("if-match"))


def json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A response from JSON the store already serialised: nothing is encoded twice. (One record
    or a service document: small, as request bodies are capped; lists go through ``json_array_response``.)"""
    return Response(content=body, status_code=status, media_type="application/json", headers=headers)
