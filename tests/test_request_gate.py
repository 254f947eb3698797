"""What reaches an operation, through a real uvicorn: declared paths by their declared name only.

Each case here is something a hostile run found answering outside the spec: an encoded slash
routed as a separator (a DELETE through it deleted), a WebSocket handshake answered 403, a
wrong method on a malformed id answered 400, a 4,301-digit id answered 500, a client leaving
mid-body logged as a 500. Raw sockets send what an HTTP client library would tidy up.
"""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.support.data import NEW_CUSTOMER
from tests.support.servers import LiveServer

pytestmark = pytest.mark.live

SAMPLE = "e20a1b70-67c9-4fb4-9f6d-56ba97a87c14"


def raw(server: LiveServer, request: bytes, close_after: bool = False) -> bytes:
    """Send bytes as they are; the whole answer (the request asks to close), or none with ``close_after``."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        if close_after:
            return b""
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


@pytest.fixture(scope="module")
def cms(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("cms") / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    server = LiveServer(tmp_path_factory.mktemp("profile") / "data", "serve", "profile").start()
    yield server
    server.stop()


@pytest.mark.parametrize("target", [f"/api/customers%2F{SAMPLE}", f"/api/customers%2f{SAMPLE}", "/api/customers%2F"])
def test_an_encoded_slash_is_not_a_separator(cms, target):
    answer = raw(cms, f"DELETE {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 404 ")
    assert b'{"detail":"Not Found"}' in answer
    assert httpx.get(f"{cms.url}/api/customers/{SAMPLE}").status_code == 200


def test_a_websocket_handshake_is_an_http_request_like_any_other(cms):
    headers = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    assert httpx.get(f"{cms.url}/api/customers", headers=headers).status_code == 200
    assert httpx.get(f"{cms.url}/nope", headers=headers).status_code == 404


@pytest.mark.parametrize("method", ["PUT", "POST", "OPTIONS"])
@pytest.mark.parametrize("customer_id", ["abc", "1"])
def test_a_wrong_method_is_405_whatever_the_id(profile, method, customer_id):
    response = httpx.request(method, f"{profile.url}/customers/{customer_id}", json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, DELETE, PATCH, HEAD"
    assert response.json() == {"error": "Method Not Allowed"}


def test_the_alias_allows_what_its_path_allows(cms):
    response = httpx.put(f"{cms.url}/api/customers/", json={})
    assert (response.status_code, response.headers["allow"]) == (405, "GET, POST, HEAD")


@pytest.mark.parametrize(
    ("customer_id", "why"),
    [
        ("abc", "'abc' is not a valid integer"),
        ("1.5", "'1.5' is not a valid integer"),
        ("9" * 4301, "is not a valid integer"),
        ("9" * 19, "is out of range (a 64-bit integer)"),
        (str(2**63), "is out of range (a 64-bit integer)"),
        ("0", "'0' must be at least 1"),
        ("-1", "'-1' must be at least 1"),
    ],
)
def test_a_bad_id_is_one_400_naming_the_parameter_and_why(profile, customer_id, why):
    """Not a number, too large (4,301 digits once made starlette's int() raise: a 500), below the minimum."""
    for method in ("GET", "PATCH", "DELETE"):
        response = httpx.request(method, f"{profile.url}/customers/{customer_id}", json={})
        assert response.status_code == 400
        assert response.json()["error"].startswith("Invalid customer_id: ")
        assert why in response.json()["error"]


@pytest.mark.parametrize("customer_id", ["1", "01", "00000000000000000001", "+1"])
def test_an_integer_id_is_read_as_its_value(profile, customer_id):
    assert httpx.get(f"{profile.url}/customers/{customer_id}").json()["id"] == 1


def test_the_largest_int64_is_a_valid_id(profile):
    assert httpx.get(f"{profile.url}/customers/{2**63 - 1}").status_code == 404


@pytest.mark.parametrize("path", ["/", "/health", "/api/customers", f"/api/customers/{SAMPLE}", "/openapi.json", "/docs", "/favicon.ico"])
def test_head_answers_as_get_without_a_body(cms, path):
    head, get = httpx.head(f"{cms.url}{path}"), httpx.get(f"{cms.url}{path}")
    assert (head.status_code, head.content) == (get.status_code, b"")
    assert head.headers["content-type"] == get.headers["content-type"]


def test_a_client_that_leaves_mid_body_changes_nothing_and_logs_no_error(tmp_path):
    """The validator once judged the part that had come, and the handler's re-read raised a 500."""
    with LiveServer(tmp_path / "data", env={"LOG_LEVEL": "info"}).start() as server:
        body = httpx.Request("POST", "/", json=NEW_CUSTOMER).content
        head = f"POST /api/customers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body) + 100}\r\n\r\n"
        raw(server, head.encode() + body, close_after=True)
        deadline = time.monotonic() + 10
        while "before sending its whole body" not in server.output():
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        assert httpx.get(f"{server.url}/health").json()["total_customers"] == 2
    assert "POST /api/customers 499 " in server.output()  # the access log says the client closed the request
    assert "unhandled error" not in server.output()
    assert "Traceback" not in server.output()


def test_docs_is_served_without_a_redirect(cms):
    response = httpx.get(f"{cms.url}/docs", follow_redirects=False)
    assert response.status_code == 200
    assert 'src="/docs/swagger-ui-bundle.js"' in response.text
    assert httpx.get(f"{cms.url}/docs/swagger-ui-bundle.js").status_code == 200


def test_a_path_parameter_outside_its_pattern_is_refused_in_words(cms, profile):
    """In the parameter's ``x-error``, in each service's dialect, never as the regular expression it breaks."""
    words = "must be 1 to 64 letters, digits, dots, underscores or hyphens"
    refused = httpx.put(f"{cms.url}/__admin/snapshots/bad%20name")
    assert refused.status_code == 422
    assert refused.json() == {"detail": [{"loc": ["path", "name"], "msg": words, "type": "value_error.str.regex"}]}
    refused = httpx.post(f"{profile.url}/__admin/snapshots/bad%20name/restore")
    assert refused.status_code == 422
    assert refused.json() == {"error": f"Validation failed: name: {words}"}
