"""Whether the data file's store can work now, as ``/health`` reports it: the present, not the
last failure."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

_PROBE_EVERY = 1.0
"""Seconds between two probe writes: a busy health check costs no more than one fsync each."""


class Health:
    """What the last write left unsure (``unsynced``), and the data directory looked at now."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self.unsynced: str | None = None
        """Why the last write is in place but may not survive a power cut; None once one is synced."""
        self._probed: tuple[float, str | None] = (-1.0, None)

    async def problem(self) -> str | None:
        """Why the data directory or file cannot be used now, or None when they can."""
        directory = self._path.parent
        if not directory.is_dir():
            return f"data directory {directory} is missing"
        if not os.access(self._path, os.R_OK):
            return f"data file {self._path} is not readable"
        return await self._probe() or self.unsynced

    def look_again(self) -> None:
        """A write failed: the next health check probes the directory, whenever the last probe was."""
        self._probed = (-1.0, None)

    async def _probe(self) -> str | None:
        """Whether a small file can be written and synced in the data directory now (checked at
        most every ``_PROBE_EVERY`` seconds; in a thread, as a sync waits on the disk)."""
        when, result = self._probed
        now = time.monotonic()
        if now - when >= _PROBE_EVERY:
            result = await asyncio.to_thread(self._write_probe)
            self._probed = (now, result)
        return result

    def _write_probe(self) -> str | None:
        probe = self._path.with_name(f".{self._path.name}.probe-{os.getpid()}")
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b"probe")
                os.fsync(fd)
            finally:
                os.close(fd)
            return None
        except OSError as exc:
            return f"data directory {self._path.parent} cannot take a write: {exc.strerror or exc}"
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
