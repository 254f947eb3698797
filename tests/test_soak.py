"""A bounded soak on loopback: 100 connections of mixed CRUD for SOAK_SECONDS (default 60).

wrk drives it (``tests/support/crud.lua``: reads, lists, creates, updates, and deletes of what was
created, so every request of a correct server succeeds). Zero 5xx, zero connection errors,
and the server's memory stays flat: under 10 % growth from the warmed-up baseline. Prints
the figures; it asserts no timings.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.support.data import NEW_CUSTOMER, write_customers
from tests.support.servers import LiveServer
from tests.support.wrk import run_wrk

pytestmark = pytest.mark.live

SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
CUSTOMERS = 1000


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_soak_mixed_crud_100_connections(tmp_path):
    write_customers(tmp_path / "data", CUSTOMERS)
    with LiveServer(tmp_path / "data").start() as server:
        warm = run_wrk(server.url, "mixed", count=CUSTOMERS, connections=100, seconds=10, read_share=0.6)
        baseline = rss_kib(server.process.pid)
        soak = run_wrk(server.url, "mixed", count=CUSTOMERS, connections=100, seconds=SECONDS, read_share=0.6)
        final = rss_kib(server.process.pid)
    growth = (final - baseline) / baseline
    print(
        f"soak: {soak['requests']} requests in {SECONDS:.0f}s ({soak['rps']:.0f}/s) from 100 connections, statuses {soak['statuses']}, "
        f"errors {soak['errors']}, p50 {soak['p50_us'] / 1000:.1f} ms, p99 {soak['p99_us'] / 1000:.1f} ms, RSS {baseline} -> {final} KiB ({growth:+.1%})"
    )
    for run in (warm, soak):
        assert set(run["statuses"]) <= {"200", "201", "204"}, run["statuses"]
        assert not any(run["errors"].values()), run["errors"]
    assert soak["requests"] > SECONDS * 100
    assert growth < 0.10


@pytest.mark.slow
def test_stalled_readers_of_a_large_list_do_not_pin_memory(tmp_path):
    """25 clients each write, then ask for the 100,000-customer list and never read it: every
    version of the list was once a whole body of its own, held until its reader read it, and the
    server's memory grew with each stalled reader (docs/performance.md has the figures)."""
    write_customers(tmp_path / "data", 100_000)
    held = []
    with LiveServer(tmp_path / "data").start() as server:
        try:
            assert server.process is not None
            httpx.get(f"{server.url}/api/customers", timeout=60)
            idle = rss_kib(server.process.pid)
            peak = idle
            for n in range(25):
                httpx.post(f"{server.url}/api/customers", json={**NEW_CUSTOMER, "name": f"stall-{n}"}).raise_for_status()
                sock = socket.create_connection(("127.0.0.1", server.port))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.sendall(b"GET /api/customers HTTP/1.1\r\nHost: x\r\n\r\n")
                held.append(sock)
                peak = max(peak, rss_kib(server.process.pid))
            for _ in range(10):
                time.sleep(0.5)
                peak = max(peak, rss_kib(server.process.pid))
            assert httpx.get(f"{server.url}/health").status_code == 200  # still serving
        finally:
            for sock in held:
                sock.close()
    print(f"stalled readers: idle {idle // 1024} MiB, peak {peak // 1024} MiB ({peak / idle:.2f}x)")
    assert peak < 1.5 * idle
