"""SIGTERM while writes are in flight: each finishes or fails cleanly; nothing acknowledged is lost."""

from __future__ import annotations

import json
import signal
import threading
import time

import httpx
import pytest

from tests.support.data import NEW_CUSTOMER
from tests.support.servers import LiveServer

pytestmark = pytest.mark.live


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["1-worker", "2-workers"])
def test_sigterm_under_write_load_keeps_every_acknowledged_write(tmp_path, workers):
    with LiveServer(tmp_path / "data", *workers).start() as server:
        acknowledged: list[dict] = []
        statuses: list[int] = []
        lock = threading.Lock()

        def writer(number: int) -> None:
            with httpx.Client(base_url=server.url, timeout=20) as http:
                for i in range(10_000):
                    try:
                        response = http.post("/api/customers/", json={**NEW_CUSTOMER, "name": f"t{number}-{i}"})
                    except httpx.TransportError:
                        return
                    with lock:
                        statuses.append(response.status_code)
                        if response.status_code == 201:
                            acknowledged.append(response.json())

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        assert server.stop(signal.SIGTERM) == 0
        for thread in threads:
            thread.join(timeout=30)
        assert acknowledged
        assert all(status in (201, 503) for status in statuses)
        stored = json.loads((server.data_dir / "customers.json").read_bytes())
        for record in acknowledged:
            assert stored[record["id"]] == record
        assert not list(server.data_dir.glob("*.tmp-*"))
