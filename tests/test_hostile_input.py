"""Hostile input against a real server: a clear 4xx in the contract's shape, never a 5xx or a
hang, and the data file (and its backup) byte-for-byte unchanged."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.support.data import NEW_CUSTOMER
from tests.support.servers import LiveServer

pytestmark = pytest.mark.live

JSON = {"content-type": "application/json"}
CUSTOMER = "/api/customers/e20a1b70-67c9-4fb4-9f6d-56ba97a87c14"
MIB = 1024 * 1024

# (name, method, path, headers, body, expected status). Why each matters:
CASES = [
    # A client streaming megabytes must not make the server buffer them (memory exhaustion).
    ("body over MAX_BODY_BYTES", "POST", "/api/customers/", JSON, b'{"name": "' + b"x" * (2 * MIB) + b'"}', 413),
    # Chunked bodies carry no Content-Length: the limit must count bytes as they stream.
    ("chunked body over the limit", "POST", "/api/customers/", JSON, iter([b"x" * MIB, b"x" * MIB]), 413),
    # Recursive parsers overflow the stack on deep nesting.
    ("deeply nested arrays", "POST", "/api/customers/", JSON, b"[" * 100_000 + b"]" * 100_000, 422),
    ("deeply nested objects", "POST", "/api/customers/", JSON, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, 422),
    # Bytes that are not UTF-8 break naive decoders with UnicodeDecodeError (a 500).
    ("invalid UTF-8", "POST", "/api/customers/", JSON, b'{"name": "\xff\xfe"}', 422),
    ("UTF-16 body", "POST", "/api/customers/", JSON, '{"name": "A"}'.encode("utf-16"), 422),
    # A lone surrogate parses in Python but cannot be written back as UTF-8 (a 500 at save time).
    ("lone surrogate", "POST", "/api/customers/", JSON, b'{"name": "\\ud800", "email": "a@example.com", "phone": "1", "address": "x", "company": "c"}', 422),
    # Python's json accepts NaN and Infinity; they are not JSON and no other client can read them back.
    ("NaN", "PUT", CUSTOMER, JSON, b'{"name": NaN}', 422),
    ("Infinity", "PUT", CUSTOMER, JSON, b'{"phone": -Infinity}', 422),
    ("huge number", "PUT", CUSTOMER, JSON, b'{"phone": 1e999999}', 422),
    # Duplicate keys mean different things to different parsers (first wins, last wins).
    ("duplicate keys", "PUT", CUSTOMER, JSON, b'{"name": "A", "name": "B"}', 422),
    # Unbounded strings would grow the data file without limit.
    ("very long string", "PUT", CUSTOMER, JSON, b'{"name": "' + b"n" * 500_000 + b'"}', 422),
    # A field checked by a costly rule (a pattern) must be refused by its cheap one (length) first.
    ("one-megabyte email", "PUT", CUSTOMER, JSON, b'{"email": "' + b"a" * (MIB - 100) + b'@x.com"}', 422),
    # Encoded slashes are data, not separators: this one once deleted a record.
    ("encoded slash in the collection", "DELETE", "/api/customers%2Fe20a1b70-67c9-4fb4-9f6d-56ba97a87c14", {}, None, 404),
    # A 4,301-digit integer once made starlette's int() raise: a 500.
    ("4,301-digit profile-style id on the CMS", "GET", "/api/customers/" + "9" * 4301, {}, None, 404),
    # Media types are case-insensitive: this one once skipped validation and stored an empty record.
    ("empty object as Application/JSON", "POST", "/api/customers/", {"content-type": "Application/JSON"}, b"{}", 422),
    ("trailing slash", "GET", CUSTOMER + "/", {}, None, 404),
    # Control characters corrupt logs, terminals and CSV exports downstream.
    ("raw control character", "PUT", CUSTOMER, JSON, b'{"name": "a\x07b"}', 422),
    ("escaped NUL", "PUT", CUSTOMER, JSON, b'{"name": "a\\u0000b"}', 422),
    ("escaped trailing newline", "PUT", CUSTOMER, JSON, b'{"company": "Tech\\n"}', 422),
    # Very long or encoded path ids probe routing, logging and lookups.
    ("10,000-character id", "GET", "/api/customers/" + "a" * 10_000, {}, None, 404),
    ("10,000-character id on delete", "DELETE", "/api/customers/" + "b" * 10_000, {}, None, 404),
    ("percent-encoded traversal id", "DELETE", "/api/customers/..%2F..%2Fcustomers.json", {}, None, 404),
    ("percent-encoded NUL id", "GET", "/api/customers/%00", {}, None, 404),
    # A form post or XML is not what the contract accepts.
    ("wrong content type", "POST", "/api/customers/", {"content-type": "text/plain"}, b"name=A", 415),
    ("form content type", "PUT", CUSTOMER, {"content-type": "application/x-www-form-urlencoded"}, b"name=A", 415),
    # No body at all, or a body that is JSON but not an object.
    ("empty body", "POST", "/api/customers/", JSON, b"", 422),
    ("null body", "PUT", CUSTOMER, JSON, b"null", 422),
    ("array body", "POST", "/api/customers/", JSON, b"[" + b'{"name": "A"},' * 1000 + b"{}]", 422),
    ("object in a string field", "PUT", CUSTOMER, JSON, b'{"address": {"street": "x"}}', 422),
    ("unknown method", "PATCH", CUSTOMER, JSON, b"{}", 405),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("hostile") / "data").start() as live:
        yield live


def snapshot(server: LiveServer) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(server.data_dir.iterdir()) if not p.name.endswith(".lock")}


@pytest.mark.parametrize(("name", "method", "path", "headers", "body", "status"), CASES, ids=[c[0] for c in CASES])
def test_hostile_input_gets_its_4xx_and_changes_nothing(server, name, method, path, headers, body, status):
    before = snapshot(server)
    response = httpx.request(method, server.url + path, headers=headers, content=body, timeout=30)
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert detail if isinstance(detail, str) else detail[0]["msg"]
    assert snapshot(server) == before
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_a_declared_oversize_body_is_refused_before_it_is_sent(server):
    """The server answers 413 from the headers alone: the client never sends the 10 MiB."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /api/customers/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\n\r\n{")
        started = time.monotonic()
        reply = b""
        while b'bytes"}' not in reply and (chunk := sock.recv(4096)):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413")
    assert b'{"detail":"Request body is larger than 1048576 bytes"}' in reply
    assert time.monotonic() - started < 5


def test_the_service_still_works_after_the_whole_table(server):
    assert httpx.post(f"{server.url}/api/customers/", json=NEW_CUSTOMER).status_code == 201
