"""Clients that keep writing through a server while a test does something to it."""

from __future__ import annotations

import threading
import time

import httpx

from tests.support.data import NEW_CUSTOMER, NEW_PROFILE


class Writers:
    """Threads writing through one server until stopped; what was acknowledged, and every status seen."""

    def __init__(self, url: str, threads: int = 4, service: str = "cms") -> None:
        self.url = url
        self.path = "/api/customers" if service == "cms" else "/customers"
        self.body = NEW_CUSTOMER if service == "cms" else NEW_PROFILE
        self.acknowledged: list[dict] = []
        self.statuses: dict[int, int] = {}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._write, args=(n,)) for n in range(threads)]
        self._lock = threading.Lock()

    def _write(self, n: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            i = 0
            while not self._stop.is_set():
                i += 1
                try:
                    response = client.post(self.path, json={**self.body, "address": f"{n}-{i} Elm Street, Springfield"})
                except httpx.TransportError:
                    time.sleep(0.05)
                    continue
                with self._lock:
                    self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
                    if response.status_code == 201:
                        self.acknowledged.append(response.json())
                if response.status_code != 201:
                    time.sleep(0.05)

    def __enter__(self) -> Writers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
