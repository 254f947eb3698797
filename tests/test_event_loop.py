"""The watch on the event loop (``tests/conftest.py``'s ``blockbuster``) sees the app's loop.

The test client runs the app on a loop in a thread of its own: these tests put calls through a
real request (in the store's ``get``, under the handler) and check that the watch catches those
that wait on a lock or the disk there, and lets through the same calls made off the loop and
the ones that never wait.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from blockbuster import BlockBuster

from cms_mock.stores.file import FileStore
from tests.support.app import build_client
from tests.support.blocking import BlockingSeen

SAMPLE = "/api/customers/e20a1b70-67c9-4fb4-9f6d-56ba97a87c14"

WAITING: dict[str, Callable[[int], object]] = {
    "time.sleep": lambda _fd: time.sleep(0),
    "fcntl.flock": lambda fd: fcntl.flock(fd, fcntl.LOCK_EX),
    "os.fsync": lambda fd: os.fsync(fd),
}


@pytest.fixture
def lock_file(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path / "some.lock", os.O_RDWR | os.O_CREAT, 0o600)
    yield fd
    os.close(fd)


def get_calling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: Callable[[], object], off_the_loop: bool = False) -> httpx.Response:
    """A GET of a sample record whose store makes ``call`` first, on the app's loop or in a thread."""
    get = FileStore.get

    async def get_after_the_call(store: FileStore, key: str) -> bytes:
        if off_the_loop:
            await asyncio.to_thread(call)
        else:
            call()
        return await get(store, key)

    monkeypatch.setattr(FileStore, "get", get_after_the_call)
    with build_client(tmp_path / "data") as client:
        return client.get(SAMPLE)


@pytest.mark.parametrize("name", WAITING)
def test_a_call_that_waits_made_on_the_apps_loop_is_caught(tmp_path, monkeypatch, blockbuster: BlockBuster, lock_file, name):
    """The app answers the error with a 500; the watch keeps it too, so no answer can hide it."""
    response = get_calling(tmp_path, monkeypatch, lambda: WAITING[name](lock_file))
    assert response.status_code == 500
    assert [seen.split(" in ")[0] for seen in BlockingSeen.seen] == [name]
    BlockingSeen.seen.clear()  # caught, as it must be: the test passes


@pytest.mark.parametrize("name", WAITING)
def test_the_same_call_made_in_a_thread_is_not_caught(tmp_path, monkeypatch, blockbuster: BlockBuster, lock_file, name):
    assert get_calling(tmp_path, monkeypatch, lambda: WAITING[name](lock_file), off_the_loop=True).status_code == 200


def test_a_lock_taken_without_waiting_and_let_go_is_not_caught(tmp_path, monkeypatch, blockbuster: BlockBuster, lock_file):
    def take_and_let_go() -> None:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(lock_file, fcntl.LOCK_UN)

    assert get_calling(tmp_path, monkeypatch, take_and_let_go).status_code == 200
