"""SIGKILL the server at random moments while clients write; nothing acknowledged is lost.

Each round starts the real server (alternately with one and two workers; every fourth round
also deletes the lock file while the writers run) over the same data
directory, runs concurrent writers that record every 2xx they receive, kills the whole
process group at a random moment, and checks the files and, after a restart, the data.
``CRASH_ROUNDS`` sets the number of rounds (the slow tox environment runs 12 unless it is set).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.data import NEW_CUSTOMER
from tests.support.servers import LiveServer

pytestmark = pytest.mark.live

ROUNDS = int(os.environ.get("CRASH_ROUNDS", "4"))
WRITERS = 6
SAMPLE_IDS = 2


def strict_load(path: Path) -> dict:
    """Parse a data file, refusing duplicate keys (a duplicated record would hide in a dict)."""

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), f"duplicate keys in {path}"
        return dict(pairs)

    return json.loads(path.read_bytes(), object_pairs_hook=no_duplicates)


class Ledger:
    """What the clients were told: the last acknowledged state of each record, and what was in flight."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acknowledged: dict[str, dict | None] = {}  # id -> record, or None once deleted
        self.in_flight: dict[int, tuple[str, str | None, dict]] = {}
        self.names: set[str] = set()
        self.acks = 0

    def writer(self, number: int, url: str, rng: random.Random) -> None:
        mine: list[str] = []
        with httpx.Client(base_url=url, timeout=10) as http:
            for step in range(100_000):
                op = "create" if len(mine) < 3 or rng.random() < 0.4 else rng.choice(["update", "update", "delete"])
                target = rng.choice(mine) if op != "create" else None
                fields = (
                    {**NEW_CUSTOMER, "name": f"w{number}-{step}-{rng.random()}"}
                    if op == "create"
                    else {"phone": f"{number}-{step}", "status": rng.choice(["active", "inactive"])}
                )
                with self.lock:
                    self.in_flight[number] = (op, target, fields)
                    if op == "create":
                        self.names.add(fields["name"])
                try:
                    if op == "create":
                        response = http.post("/api/customers/", json=fields)
                    elif op == "update":
                        response = http.put(f"/api/customers/{target}", json=fields)
                    else:
                        response = http.delete(f"/api/customers/{target}")
                except httpx.TransportError:
                    return  # the server died with this request in flight
                assert response.status_code < 500, response.text
                with self.lock:
                    self.acks += 1
                    if op == "create":
                        record = response.json()
                        self.acknowledged[record["id"]] = record
                        mine.append(record["id"])
                    elif op == "update":
                        self.acknowledged[target] = response.json()
                    else:
                        self.acknowledged[target] = None
                        mine.remove(target)
                    del self.in_flight[number]

    def check(self, stored: dict[str, dict]) -> None:
        in_flight_by_id = {target: (op, fields) for op, target, fields in self.in_flight.values() if target}
        for customer_id, record in self.acknowledged.items():
            actual = stored.get(customer_id)
            if actual == record:
                continue
            op, fields = in_flight_by_id.get(customer_id, (None, {}))
            if op == "delete":
                assert actual is None, f"{customer_id}: in-flight delete, yet {actual}"
            elif op == "update":
                assert record is not None, f"{customer_id} deleted, yet updated"
                assert actual is not None, f"{customer_id}: acknowledged record lost"
                assert {k: actual[k] for k in fields} == fields, f"{customer_id}: neither the acknowledged nor the in-flight state"
                assert actual["updated_at"] > record["updated_at"]
            else:
                raise AssertionError(f"{customer_id}: acknowledged {record}, found {actual}")
        in_flight_creates = {fields["name"] for op, _, fields in self.in_flight.values() if op == "create"}
        for customer_id, actual in stored.items():
            if customer_id in self.acknowledged:
                continue
            assert actual["name"] in in_flight_creates or customer_id in SAMPLES, f"unexpected record {actual}"
        names = [r["name"] for r in stored.values()]
        assert len(names) == len(set(names)), "a record was duplicated"

    def settle(self, stored: dict[str, dict]) -> None:
        """What was in flight when the server died is decided now: take what the restart shows."""
        for op, target, fields in self.in_flight.values():
            if op == "create":
                created = [i for i, r in stored.items() if r["name"] == fields["name"]]
                self.acknowledged.update({i: stored[i] for i in created})
            else:
                self.acknowledged[target] = stored.get(target)
        self.in_flight.clear()


SAMPLES = {"e20a1b70-67c9-4fb4-9f6d-56ba97a87c14", "5f0c6a2e-8d41-4b7a-9c3e-2a1d7e6b9f40"}


def test_sigkill_at_random_moments_loses_no_acknowledged_write(tmp_path):
    data_dir = tmp_path / "data"
    rng = random.Random(int(os.environ.get("CRASH_SEED", time.time_ns())))
    ledger = Ledger()
    for round_number in range(ROUNDS):
        workers = ["--workers", "2"] if round_number % 2 else []
        server = LiveServer(data_dir, *workers).start()
        threads = [threading.Thread(target=ledger.writer, args=(n, server.url, random.Random(rng.random()))) for n in range(WRITERS)]
        try:
            for thread in threads:
                thread.start()
            if round_number % 4 == 3:  # every fourth round (two workers) someone deletes the lock file mid-run
                time.sleep(rng.uniform(0.1, 0.5))
                (data_dir / "customers.json.lock").unlink(missing_ok=True)
            time.sleep(rng.uniform(0.2, 1.5))
        finally:
            server.stop(signal.SIGKILL)
        for thread in threads:
            thread.join(timeout=30)
            assert not thread.is_alive()

        strict_load(data_dir / "customers.json")
        strict_load(data_dir / "customers.json.bak")
        with server.start():
            assert not list(data_dir.glob("*.tmp-*")), "a temp file was left"
            stored = {c["id"]: c for c in httpx.get(f"{server.url}/api/customers/").json()}
            assert stored == strict_load(data_dir / "customers.json")
        ledger.check(stored)
        ledger.settle(stored)
    print(f"crash rounds: {ROUNDS}, acknowledged writes: {ledger.acks}, lost: 0")
    assert ledger.acks > ROUNDS * 10
