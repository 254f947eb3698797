"""The store under faults a hostile run found: each answer tells the truth and nothing is lost.

Two ``Store`` objects over one directory stand for two worker processes: ``flock`` locks belong
to an open file, so they exclude each other exactly as two processes do.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import httpx
import pytest

from cms_mock.errors import ApiError, StoreUnavailable
from cms_mock.services import SERVICES
from cms_mock.stores import datafile
from cms_mock.stores.file import FileStore
from tests.support.data import NEW_CUSTOMER, NEW_PROFILE, sample_customers
from tests.support.servers import LiveServer


def opened(path: Path, ids: str = "uuid4") -> FileStore:
    store = FileStore(path, SERVICES["cms" if ids == "uuid4" else "profile"].rules)
    asyncio.run(store.open())
    return store


def test_a_writer_locks_the_lock_file_on_disk_now_not_a_deleted_one(tmp_path):
    """A lock on a deleted lock file excludes no process that opens the new one."""
    path = tmp_path / "customers.json"
    first = opened(path)
    lock = datafile.lock_path(path)
    lock.unlink()
    second = opened(path)  # a worker started after the deletion: it creates and locks a new file
    asyncio.run(first.create(dict(NEW_CUSTOMER)))
    assert first._lock.fd is not None
    assert os.fstat(first._lock.fd).st_ino == os.stat(lock).st_ino == os.fstat(second._lock.fd).st_ino  # type: ignore[arg-type]


def test_a_deleted_profile_id_is_never_given_out_again_by_another_worker_or_after_a_restart(tmp_path):
    path = tmp_path / "profiles.json"
    first, second = opened(path, "int"), opened(path, "int")
    created = json.loads(asyncio.run(first.create(dict(NEW_PROFILE))))
    asyncio.run(first.delete(str(created["id"])))
    again = json.loads(asyncio.run(second.create(dict(NEW_PROFILE))))
    assert again["id"] == created["id"] + 1
    asyncio.run(second.delete(str(again["id"])))
    restarted = opened(path, "int")
    assert json.loads(asyncio.run(restarted.create(dict(NEW_PROFILE))))["id"] == again["id"] + 1
    assert datafile.ids_path(path).read_text() == f"{again['id'] + 2}\n"


def test_a_data_file_damaged_in_place_is_served_as_it_was_and_never_overwritten(tmp_path):
    path = tmp_path / "customers.json"
    store = opened(path)
    before = asyncio.run(store.list())
    path.write_text("{ x")
    assert asyncio.run(store.list()) == before  # reads go on from the last good state
    assert "cannot be read" in (asyncio.run(store.problem()) or "")
    with pytest.raises(StoreUnavailable, match="changed by hand"):
        asyncio.run(store.create(dict(NEW_CUSTOMER)))
    assert path.read_text() == "{ x"
    path.write_bytes(b"".join(datafile.render({c["id"]: datafile.encode(c) for c in sample_customers()[:1]})))
    assert len(asyncio.run(store.list())) == 1  # repaired: read again, and writes work
    assert asyncio.run(store.problem()) is None
    asyncio.run(store.create(dict(NEW_CUSTOMER)))


def test_health_reflects_the_present_not_the_last_failure(tmp_path):
    data_dir = tmp_path / "data"
    store = opened(data_dir / "customers.json")
    data_dir.rename(tmp_path / "away")
    with pytest.raises(StoreUnavailable):
        asyncio.run(store.create(dict(NEW_CUSTOMER)))
    assert "missing" in (asyncio.run(store.problem()) or "")
    (tmp_path / "away").rename(data_dir)
    time.sleep(1.1)  # the write probe runs at most once a second
    assert asyncio.run(store.problem()) is None  # no write has succeeded since, and it is healthy


def test_one_bad_change_fails_alone_and_its_neighbours_are_made(tmp_path):
    path = tmp_path / "customers.json"
    store = opened(path)
    document = json.loads(path.read_bytes())
    broken_id, healthy_id = list(document)
    document[broken_id]["updated_at"] = "9999-12-31T23:59:59.999999"  # edited by hand: no later time to move to
    path.write_text(json.dumps(document, indent=2))

    async def together() -> list[object]:
        changes = [store.update(broken_id, {"name": "x"})] + [store.update(healthy_id, {"name": f"n{i}"}) for i in range(10)]
        return await asyncio.gather(*changes, return_exceptions=True)

    broken, *healthy = asyncio.run(together())
    assert isinstance(broken, ApiError)
    assert broken.status == 422
    assert "updated_at" in str(broken.message)
    assert all(isinstance(result, bytes) for result in healthy)
    assert json.loads(path.read_bytes())[healthy_id]["name"] == "n9"


def test_a_write_whose_directory_sync_fails_is_answered_as_done_and_reported(tmp_path, monkeypatch):
    """The rename is in place and served: a 503 would make a retrying client write it twice."""
    path = tmp_path / "customers.json"
    store = opened(path)

    def failing_sync(_directory: Path) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(datafile, "sync_directory", failing_sync)
    created = json.loads(asyncio.run(store.create(dict(NEW_CUSTOMER))))
    assert json.loads(path.read_bytes())[created["id"]] == created
    assert "could not be synced" in (asyncio.run(store.problem()) or "")
    monkeypatch.undo()
    asyncio.run(store.create(dict(NEW_CUSTOMER)))
    assert asyncio.run(store.problem()) is None


def test_a_symlinked_data_file_is_written_through_to_its_target(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "customers.json"
    opened(target)
    link = tmp_path / "customers.json"
    link.symlink_to(target)
    store = opened(link)
    created = json.loads(asyncio.run(store.create(dict(NEW_CUSTOMER))))
    assert link.is_symlink()
    assert created["id"] in json.loads(target.read_bytes())
    assert (tmp_path / "real" / "customers.json.bak").exists()


def test_a_closed_store_refuses_writes(tmp_path):
    store = opened(tmp_path / "customers.json")
    asyncio.run(store.close())
    with pytest.raises(StoreUnavailable, match="closed"):
        asyncio.run(store.create(dict(NEW_CUSTOMER)))


@pytest.mark.live
def test_a_live_server_keeps_serving_a_file_damaged_in_place_and_health_says_why(tmp_path):
    """GET, the list and /health once answered 500 after ``echo '{ x' > customers.json``."""
    with LiveServer(tmp_path / "data").start() as server:
        listed = httpx.get(f"{server.url}/api/customers").json()
        (server.data_dir / "customers.json").write_text("{ x")
        assert httpx.get(f"{server.url}/api/customers").json() == listed
        assert httpx.get(f"{server.url}/api/customers/{listed[0]['id']}").status_code == 200
        health = httpx.get(f"{server.url}/health")
        assert health.status_code == 503
        assert "changed by hand" in health.json()["reason"]
        refused = httpx.post(f"{server.url}/api/customers", json=NEW_CUSTOMER)
        assert refused.status_code == 503
        assert "changed by hand" in refused.json()["detail"]
    assert (server.data_dir / "customers.json").read_text() == "{ x"
