"""The data file's lock: one permanent lock file beside it, held with an exclusive ``flock`` by
whichever process changes the data file, so several processes can share one data directory."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from cms_mock.stores import datafile

logger = logging.getLogger(__name__)


class FileLock:
    """The exclusive lock on the lock file of one data file, its descriptor kept open between uses."""

    def __init__(self, data: Path) -> None:
        self._path = datafile.lock_path(data)
        self.fd: int | None = None

    @contextlib.contextmanager
    def held_sync(self) -> Iterator[None]:
        """Held for the block, waited for if another process holds it (call it in a thread)."""
        fd = self._lock()
        assert fd is not None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Held for the block; waited for in a thread if another process holds it."""
        fd = self._lock(wait=False)  # free most of the time: no thread hop then
        if fd is None:
            fd = await asyncio.to_thread(self._lock)
        assert fd is not None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _lock(self, wait: bool = True) -> int | None:
        """Hold an exclusive lock on the lock file that is on disk now, and return its descriptor
        (None when ``wait`` is false and another process holds it).

        Someone may delete or replace the lock file while we wait for it: a lock on a file that
        is no longer at that path excludes nobody (the next writer opens the new one), so after
        taking it we check it is still the file at the path, and start again if not.
        """
        while True:
            if self.fd is None:
                self.fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None
            held = os.fstat(self.fd)
            try:
                current = os.stat(self._path)
            except FileNotFoundError:
                current = None
            if current is not None and (current.st_ino, current.st_dev) == (held.st_ino, held.st_dev):
                return self.fd
            logger.warning("%s was deleted or replaced while the service runs; locking the file there now", self._path)
            os.close(self.fd)  # closing releases the stale lock
            self.fd = None
