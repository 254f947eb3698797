"""Reading the request journal: what a read holds in memory is its page and one entry, whatever
the journal holds, on every backend (the journal directory, memory, PostgreSQL); a matcher as deep
as a JSON parser reads is answered; an integer beyond 64 bits is found as it was sent; the fault
rules' lock is waited for off the event loop. The server's behaviours through real servers."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import os
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cms_mock import services
from cms_mock.state import Entry, Page, ServiceState, entry_id, now
from cms_mock.state.local import LocalState
from cms_mock.state.memory import MemoryState
from cms_mock.state.postgres import PostgresState
from cms_mock.stores.postgres import PostgresStore
from tests.support.servers import LiveServer, MemoryServer

ENTRIES = 60
JSON = {"Content-Type": "application/json"}
BIG = 123456789012345678901234567890
"""An integer beyond 64 bits (a float holds it as 1.2345678901234568e+29)."""


def large_entry(n: int) -> Entry:
    """An entry as the recorder makes one, with a 20 KB body and 300 headers."""
    items = [{"n": item, "name": f"customer {item:06d}"} for item in range(600)]
    return {
        "id": entry_id(),
        "time": now(),
        "method": "POST" if n % 2 else "GET",
        "path": "/api/customers/",
        "query": "",
        "operationId": "createCustomer",
        "status": 422,
        "duration_ms": 1.5,
        "request": {"headers": {f"x-header-{h:03d}": f"value {h}" for h in range(300)}, "body": {"batch": n, "items": items}, "truncated": False},
        "response": {"headers": {"content-type": "application/json"}, "body": {"detail": [{"loc": ["body"], "msg": "field required"}]}, "truncated": False},
    }


@pytest.fixture(params=["directory", "memory", "postgres"])
def journal_of(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], contextlib.AbstractAsyncContextManager[ServiceState]]:
    """``journal_of()``: an opened ``ServiceState`` of the CMS that keeps ``ENTRIES`` entries."""
    service = services.service("cms")
    url = request.getfixturevalue("postgres").database() if request.param == "postgres" else ""

    @contextlib.asynccontextmanager
    async def opened() -> AsyncIterator[ServiceState]:
        store = None
        if request.param == "directory":
            journal: ServiceState = LocalState(tmp_path / "state", ["createCustomer"], ENTRIES)
        elif request.param == "memory":
            journal = MemoryState(ENTRIES)
        else:
            store = PostgresStore(url, service.table, service.rules)
            await store.open()
            journal = PostgresState(store, service.table, ENTRIES)
        await journal.open()
        try:
            yield journal
        finally:
            await journal.close()
            if store is not None:
                await store.close()

    return opened


def test_a_read_holds_its_page_and_one_entry_not_the_journal(journal_of):
    """Python's allocations while a read runs, against what one entry costs parsed: a journal
    read whole (what every read did) holds ``ENTRIES`` of them."""

    async def scenario() -> tuple[int, list[tuple[Page, int]]]:
        async with journal_of() as journal:
            for n in range(ENTRIES):
                await journal.record(large_entry(n))
            before = tracemalloc.get_traced_memory()[0]
            one = large_entry(0)
            size = tracemalloc.get_traced_memory()[0] - before
            del one
            answers = []
            for matcher, limit in READS:
                gc.collect()
                tracemalloc.reset_peak()
                before = tracemalloc.get_traced_memory()[0]
                page = await journal.requests(matcher, limit)
                answers.append((page, tracemalloc.get_traced_memory()[1] - before))
            return size, answers

    tracemalloc.start()
    try:
        one, answers = asyncio.run(scenario())
    finally:
        tracemalloc.stop()
    (newest, newest_held), (counted, counted_held), (found, found_held) = answers
    assert (newest.total, [entry["request"]["body"]["batch"] for entry in newest.entries]) == (ENTRIES, [ENTRIES - 1])
    assert (counted.total, counted.entries) == (ENTRIES // 2, [])
    assert (found.total, [entry["request"]["body"]["batch"] for entry in found.entries]) == (1, [7])
    assert newest_held < 8 * one, f"a read of one entry held {newest_held:,} bytes; one entry parsed is {one:,}"
    assert counted_held < 8 * one, f"a count held {counted_held:,} bytes; one entry parsed is {one:,}"
    assert found_held < 8 * one, f"a count judging every body held {found_held:,} bytes; one entry parsed is {one:,}"


READS: list[tuple[dict[str, Any], int | None]] = [
    ({}, 1),  # the newest entry
    ({"method": "post"}, 0),  # a count by a key of the head
    ({"method": "POST", "body": {"batch": 7}}, None),  # every body judged
]


def nested(depth: int) -> Any:
    """``{"a": {"a": ... 1}}``, ``depth`` objects deep."""
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def deep_json(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.live
@pytest.mark.parametrize("kind", [LiveServer, MemoryServer], ids=["file", "memory"])
def test_a_count_with_a_matcher_as_deep_as_json_goes_is_answered(tmp_path, kind):
    """A matcher is judged on a stack of its own: as deep as the body it is judged against, and
    as deep as a JSON parser reads, it is a 200 with the count, or the declared 422."""
    with kind(tmp_path / "data").start() as server:
        url = server.url
        assert httpx.delete(f"{url}/__admin/requests", timeout=30).status_code == 204  # the start-up's health checks gone
        sent = httpx.post(f"{url}/api/customers/", content=deep_json(600), headers=JSON, timeout=30)
        assert sent.status_code == 422
        listed = httpx.get(f"{url}/__admin/requests", timeout=30)
        assert listed.status_code == 200, listed.text
        (entry,) = listed.json()["requests"]
        kept = 1 if entry["request"]["body"] == nested(600) else 0  # kept whole, or cut (and marked)
        for depth, expected in [(600, kept), (250, 0), (1023, 0)]:
            counted = httpx.post(f"{url}/__admin/requests/count", content=b'{"body":' + deep_json(depth) + b"}", headers=JSON, timeout=30)
            assert counted.status_code in (200, 422), f"{depth} levels: {counted.status_code} {counted.text[:200]}"
            if counted.status_code == 200:
                assert counted.json() == {"count": expected}, depth
            else:
                assert counted.json()["detail"][0]["loc"] == ["body"]


@pytest.mark.live
def test_an_integer_beyond_64_bits_is_counted_as_sent(tmp_path):
    with LiveServer(tmp_path / "data").start() as server:
        url = server.url
        raw = b'{"name": "Ada", "n": ' + str(BIG).encode() + b"}"
        assert httpx.post(f"{url}/api/customers/", content=raw, headers=JSON, timeout=30).status_code == 422

        def count(n: int) -> int:
            body = b'{"body": {"n": ' + str(n).encode() + b"}}"
            answer = httpx.post(f"{url}/__admin/requests/count", content=body, headers=JSON, timeout=30)
            assert answer.status_code == 200, answer.text
            return int(answer.json()["count"])

        assert (count(BIG), count(BIG + 1), count(int(float(BIG)))) == (1, 0, 0)
        listed = httpx.get(f"{url}/__admin/requests", timeout=30)
        assert f'"n":{BIG}'.encode() in listed.content


def _waiting_for(lock: Path) -> bool:
    """Whether a process waits for a ``flock`` on ``lock`` (``/proc/locks`` lists a waiter as ``->``)."""
    device_inode = f":{os.stat(lock).st_ino} "
    return any("->" in line and device_inode in line for line in Path("/proc/locks").read_text().splitlines())


@pytest.mark.live
def test_a_rule_change_waiting_for_the_rule_files_lock_leaves_the_server_serving(tmp_path):
    """Another worker holding the fault rules' lock holds up the change, not the event loop:
    the server answers meanwhile, and the change is made once the lock is free."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    with LiveServer(tmp_path / "data", env={"TMPDIR": str(temporary)}).start() as server:  # a single process's state directory is made there
        (directory,) = temporary.glob("cms-mock-state-*")
        lock = directory / "faults.lock"
        held = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        answers: list[httpx.Response] = []
        try:
            fcntl.flock(held, fcntl.LOCK_EX)
            adding = threading.Thread(
                target=lambda: answers.append(httpx.post(f"{server.url}/__admin/faults", json={"operationId": "listCustomers", "status": 503}, timeout=60))
            )
            adding.start()
            deadline = time.monotonic() + 30
            while not _waiting_for(lock):
                assert time.monotonic() < deadline, "the rule change never reached the lock"
                time.sleep(0.01)
            assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
            assert httpx.get(f"{server.url}/api/customers/nope", timeout=10).status_code == 404
            assert answers == []
        finally:
            os.close(held)  # the lock is free
        adding.join(60)
        assert [answer.status_code for answer in answers] == [201]
        assert httpx.get(f"{server.url}/api/customers", timeout=10).status_code == 503
