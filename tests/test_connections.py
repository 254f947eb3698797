"""Connections a hostile client holds: every one ends within its deadline, none starves the others.

uvicorn alone kept a connection that never completed a request head open forever, read a head
of any size, and accepted connections until file descriptors ran out.
"""

from __future__ import annotations

import contextlib
import socket
import time

import httpx
import pytest

from tests.support.servers import LiveServer

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("connections") / "data", env={"HEAD_TIMEOUT": "1.5", "MAX_CONNECTIONS": "1200"}).start() as live:
        yield live


def connect(server: LiveServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def read_all(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def test_a_head_sent_too_slowly_gets_408_and_the_connection_ends(server):
    with connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert time.monotonic() - started < 10


def test_a_connection_that_sends_nothing_is_closed(server):
    with connect(server) as sock:
        assert read_all(sock) == b""


def test_a_keep_alive_connection_that_stalls_in_its_next_head_is_closed(server):
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        sock.sendall(b"G")
        answers = first + read_all(sock)
    assert answers.startswith(b"HTTP/1.1 200 OK")
    assert answers.count(b"HTTP/1.1 ") == 2
    assert b"\r\n\r\n" in answers.split(b"HTTP/1.1 408 Request Timeout\r\n")[1]


def test_a_head_over_the_limit_is_431_without_being_read_whole(server):
    with connect(server) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the server may close before taking it all
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (4 * 1024 * 1024) + b"\r\n\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_a_head_just_under_the_limit_is_served(server):
    headers = {f"x-h{i}": "v" * 1000 for i in range(60)}  # about 61 KiB
    assert httpx.get(f"{server.url}/health", headers=headers).status_code == 200


def test_a_thousand_silent_connections_do_not_starve_normal_clients(server):
    silent = [connect(server) for _ in range(1000)]
    try:
        with httpx.Client(base_url=server.url, timeout=5) as client:
            statuses = [client.get("/api/customers").status_code for _ in range(50)]
        assert statuses == [200] * 50
    finally:
        for sock in silent:
            sock.close()


def test_connections_beyond_the_cap_are_refused_at_once_and_the_rest_served(tmp_path):
    with LiveServer(tmp_path / "data", env={"MAX_CONNECTIONS": "20", "HEAD_TIMEOUT": "30"}).start() as live:
        held = [connect(live) for _ in range(30)]
        try:
            refused = 0
            for sock in held:
                sock.settimeout(0.5)
                try:
                    refused += sock.recv(1) == b""
                except TimeoutError:
                    pass
                except ConnectionResetError:
                    refused += 1
            assert refused >= 10
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.2)
        assert httpx.get(f"{live.url}/health").status_code == 200
    assert live.output().count("the most allowed (MAX_CONNECTIONS)") == 1  # said once, not once per connection


def test_the_unread_body_of_a_refused_request_is_not_counted_as_the_next_head(server):
    """A 413 answered before its 2 MiB body arrived: the rest of that body once counted as the
    next request's head, and that request got a 431."""
    body = b" " * (2 * 1024 * 1024)
    with connect(server) as sock:
        sock.sendall(b"POST /api/customers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answers = read_all(sock)
    assert answers.startswith(b"HTTP/1.1 413 ")
    assert b"HTTP/1.1 200 OK" in answers
    assert b"431" not in answers
