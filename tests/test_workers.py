"""Several uvicorn workers sharing one data directory: nothing lost, nothing duplicated."""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cms_mock.services import SERVICES
from cms_mock.stores import file as store_file
from cms_mock.stores.file import FileStore
from tests.support.data import NEW_CUSTOMER
from tests.support.servers import LiveServer

pytestmark = pytest.mark.live


@pytest.fixture
def two_workers(tmp_path):
    server = LiveServer(tmp_path / "data", "--workers", "2").start()
    yield server
    server.stop()


def worker_pids(server: LiveServer) -> list[int]:
    """The uvicorn worker processes: children of the server's supervisor process."""
    assert server.process is not None
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server.process.pid and b"spawn_main" in (stat.parent / "cmdline").read_bytes():
            children.append(int(stat.parent.name))
    return children


def running(pid: int) -> bool:
    try:
        return b"zombie" not in Path(f"/proc/{pid}/status").read_bytes().lower()
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("lock_deleted", [False, True], ids=["lock-file-kept", "lock-file-deleted-and-a-worker-respawned"])
def test_8_clients_x_250_creates_leave_exactly_2000_new_records(two_workers, lock_deleted):
    """With the lock file deleted and a worker respawned, the new worker once locked a new lock file
    while the old one kept locking the deleted one: 703 of 2,000 acknowledged creates were lost."""
    url = two_workers.url
    if lock_deleted:
        for n in range(2):  # writes before the deletion, through the lock file every worker opened at start
            httpx.post(f"{url}/api/customers/", json={**NEW_CUSTOMER, "name": f"before-{n}"}).raise_for_status()
        (two_workers.data_dir / "customers.json.lock").unlink()
        old = worker_pids(two_workers)
        os.kill(old[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while len(set(worker_pids(two_workers)) - set(old)) < 1:  # uvicorn's supervisor starts a new worker
            assert time.monotonic() < deadline
            time.sleep(0.1)
        two_workers.wait_ready()

    def client(n: int) -> list[str]:
        ids = []
        with httpx.Client(base_url=url, timeout=30) as http:
            for i in range(250):
                response = http.post("/api/customers/", json={**NEW_CUSTOMER, "name": f"client{n}-{i}"})
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])
                if i % 25 == 0:  # read-your-writes, on a new connection that may reach the other worker
                    assert httpx.get(f"{url}/api/customers/{ids[-1]}").status_code == 200
        return ids

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = [i for batch in pool.map(client, range(8)) for i in batch]
    assert len(ids) == len(set(ids)) == 2000
    assert len(worker_pids(two_workers)) == 2
    stored = json.loads((two_workers.data_dir / "customers.json").read_bytes())
    before = 4 if lock_deleted else 2
    assert len(stored) == 2000 + before
    assert set(ids) <= set(stored)
    names = [c["name"] for c in stored.values()]
    assert len(names) == len(set(names))
    for worker in range(3):  # every worker answers with the whole set
        assert len(httpx.get(f"{url}/api/customers/").json()) == 2000 + before, worker


def test_8_clients_x_100_updates_to_one_record_stay_consistent(two_workers):
    url = two_workers.url
    customer = httpx.post(f"{url}/api/customers/", json=NEW_CUSTOMER).json()

    def client(n: int) -> list[dict]:
        acknowledged = []
        with httpx.Client(base_url=url, timeout=30) as http:
            for i in range(100):
                response = http.put(f"/api/customers/{customer['id']}", json={"name": f"c{n}-{i}", "phone": f"{n}-{i}"})
                assert response.status_code == 200, response.text
                record = response.json()
                assert (record["name"], record["phone"]) == (f"c{n}-{i}", f"{n}-{i}")  # both fields from one update
                acknowledged.append(record)
        return acknowledged

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        acknowledged = [r for batch in pool.map(client, range(8)) for r in batch]
    stamps = [r["updated_at"] for r in acknowledged]
    assert len(set(stamps)) == 800  # every update was applied alone, in one order
    last = max(acknowledged, key=lambda r: r["updated_at"])
    assert httpx.get(f"{url}/api/customers/{customer['id']}").json() == last
    assert json.loads((two_workers.data_dir / "customers.json").read_bytes())[customer["id"]] == last


def test_a_process_killed_while_holding_the_lock_does_not_block_the_others(two_workers):
    lock_file = two_workers.data_dir / "customers.json.lock"
    hold_lock = "\n".join(
        [
            "import fcntl, os, time",
            f"fd = os.open({str(lock_file)!r}, os.O_RDWR)",
            "fcntl.flock(fd, fcntl.LOCK_EX)",
            "print('locked', flush=True)",
            "time.sleep(120)",
        ]
    )
    holder = subprocess.Popen([sys.executable, "-c", hold_lock], stdout=subprocess.PIPE)
    assert holder.stdout is not None
    assert holder.stdout.readline() == b"locked\n"
    with pytest.raises(httpx.ReadTimeout):  # the lock is really taken by writers
        httpx.post(f"{two_workers.url}/api/customers/", json=NEW_CUSTOMER, timeout=1.5)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    holder.stdout.close()
    response = httpx.post(f"{two_workers.url}/api/customers/", json=NEW_CUSTOMER, timeout=10)
    assert response.status_code == 201
    fd = os.open(lock_file, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again once the writers are done
    finally:
        os.close(fd)


def test_a_worker_sigkilled_during_writes_does_not_stop_the_service(two_workers):
    url = two_workers.url
    victim = worker_pids(two_workers)[0]
    acknowledged = []
    deadline = time.monotonic() + 20
    with httpx.Client(base_url=url, timeout=10) as http:
        for i in range(40):
            if i == 10:
                os.kill(victim, signal.SIGKILL)
            try:
                response = http.post("/api/customers/", json={**NEW_CUSTOMER, "name": f"n{i}"})
            except httpx.TransportError:
                continue  # the request the dead worker held; not acknowledged
            assert response.status_code == 201
            acknowledged.append(response.json()["id"])
            assert time.monotonic() < deadline
    assert len(acknowledged) >= 25
    stored = json.loads((two_workers.data_dir / "customers.json").read_bytes())
    assert set(acknowledged) <= set(stored)


def test_with_two_workers_a_store_that_cannot_open_stops_the_start_with_status_3(tmp_path):
    """It once exited 0 (uvicorn's supervisor saw its workers fail and stopped quietly)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "customers.json").write_text('{"truncated": ')
    result = subprocess.run(
        [sys.executable, "-m", "cms_mock", "--workers", "2", "--data-dir", str(data_dir), "--port", "0"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 3
    assert "is not a valid data file" in result.stderr
    assert (data_dir / "customers.json").read_text() == '{"truncated": '


def test_workers_stop_when_their_supervisor_is_killed(two_workers):
    """After ``kill -9`` of the supervisor, its workers once went on serving and holding the port."""
    workers = worker_pids(two_workers)
    assert len(workers) == 2
    assert two_workers.process is not None
    os.kill(two_workers.process.pid, signal.SIGKILL)
    two_workers.process.wait()
    deadline = time.monotonic() + 20
    while any(running(pid) for pid in workers):
        assert time.monotonic() < deadline, "workers outlived their supervisor"
        time.sleep(0.1)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{two_workers.url}/health", timeout=2)


def test_a_store_catching_up_with_another_processs_write_says_so_only_at_debug_level(tmp_path, caplog):
    """Every write by one worker makes the others re-read the file: normal work, not news.
    Two stores on one file stand for two workers, so each write is certainly read by the other."""
    path = tmp_path / "customers.json"
    rules = SERVICES["cms"].rules
    said = {}

    async def write_through_one_read_through_the_other() -> None:
        writer, reader = FileStore(path, rules), FileStore(path, rules)
        await writer.open()
        await reader.open()
        try:
            for level in (logging.INFO, logging.DEBUG):
                caplog.clear()
                with caplog.at_level(level, logger=store_file.__name__):
                    created = await writer.create({**NEW_CUSTOMER, "name": logging.getLevelName(level)})
                    assert await reader.get(json.loads(created)["id"]) == created
                said[level] = [record.levelno for record in caplog.records if "changed by another process; re-reading it" in record.getMessage()]
        finally:
            await writer.close()
            await reader.close()

    asyncio.run(write_through_one_read_through_the_other())
    assert said == {logging.INFO: [], logging.DEBUG: [logging.DEBUG]}
