"""A bounded soak on loopback: 100 connections of mixed CRUD for SOAK_SECONDS (default 60).

wrk drives it (``bench/crud.lua``: reads, lists, creates, updates, and deletes of what was
created, so every request of a correct server succeeds). Zero 5xx, zero connection errors,
and the server's memory stays flat: under 10 % growth from the warmed-up baseline. Prints
the figures; it asserts no timings.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.dataset import write_customers
from bench.load import run_wrk
from tests.conftest import LiveServer

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
    server = LiveServer(tmp_path / "data").start()
    try:
        warm = run_wrk(server.url, "mixed", count=CUSTOMERS, connections=100, seconds=10, read_share=0.6)
        baseline = rss_kib(server.process.pid)
        soak = run_wrk(server.url, "mixed", count=CUSTOMERS, connections=100, seconds=SECONDS, read_share=0.6)
        final = rss_kib(server.process.pid)
    finally:
        server.stop()
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
