"""``LocalState``: a service's journal, coverage and fault rules in a directory that every worker
of one ``cms-mock --workers N`` shares (the JSON file and memory stores).

``cms-mock`` makes the directory before it starts its workers and names it in
``CMS_MOCK_STATE_DIR``; a single process makes a private one. Nothing in it must outlive the
run, so nothing is fsynced, and no worker ever waits for another on the request path:

- the journal: each worker appends JSON lines to its own file, and starts a new one after
  ``size`` lines (the one before kept), so a worker holds at most ``2 * size`` entries on disk
  and the newest ``size`` of the whole service are always there; a read merges every worker's
  files by time. Clearing writes the time it was cleared; older entries are left out.
- coverage: each worker counts in its own memory-mapped array (a slot per operation and
  status), one store of eight bytes per response; a reset keeps the sums at that moment as the
  baseline the counts start from.
- fault rules: one JSON file, changed under a ``flock`` (adding, deleting, and a request
  counted by a rule for its operation), and a generation counter in shared memory that every
  change moves on; a worker reads the file again only when the generation is not its own.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import logging
import mmap
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from cms_mock.state import Counts, Entry, counted, now, pick

logger = logging.getLogger(__name__)

STATE_DIR = "CMS_MOCK_STATE_DIR"
"""Set by ``cms-mock --workers N`` for its workers: the directory they share."""

_STATUSES = range(100, 600)


class LocalState:
    """A ``ServiceState`` in a directory (made, and removed at close, when none is given)."""

    def __init__(self, directory: Path | None, operations: list[str], journal_size: int) -> None:
        self._given = directory
        self._dir = directory or Path()
        self._operations = {name: index for index, name in enumerate(operations)}
        self._names = operations
        self._size = journal_size
        self._journal_fd = -1
        self._lines = 0
        self._counters: mmap.mmap | None = None
        self._rules: list[dict[str, Any]] = []
        self._rules_seen = -1
        self._generation: mmap.mmap | None = None

    async def open(self) -> None:
        if self._given is None:
            self._dir = Path(tempfile.mkdtemp(prefix="cms-mock-state-"))
        self._dir.mkdir(parents=True, exist_ok=True)
        self._open_journal()
        self._counters = _mapped(self._dir / f"coverage-{os.getpid()}.bin", len(self._names) * len(_STATUSES) * 8 or 8)
        self._generation = _mapped(self._dir / "faults.generation", 8)

    async def close(self) -> None:
        if self._journal_fd >= 0:
            os.close(self._journal_fd)
            self._journal_fd = -1
        for mapped in (self._counters, self._generation):
            if mapped is not None:
                mapped.close()
        self._counters = self._generation = None
        if self._given is None:
            shutil.rmtree(self._dir, ignore_errors=True)

    # -- journal and coverage --------------------------------------------------------------

    def _journal(self, old: bool = False) -> Path:
        return self._dir / f"journal-{os.getpid()}{'.old' if old else ''}.jsonl"

    def _open_journal(self) -> None:
        if self._size:
            self._journal_fd = os.open(self._journal(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    async def record(self, entry: Entry) -> None:
        key = counted(entry)
        if key is not None and key[0] in self._operations and key[1] in _STATUSES and self._counters is not None:
            slot = (self._operations[key[0]] * len(_STATUSES) + key[1] - _STATUSES.start) * 8
            struct.pack_into("q", self._counters, slot, struct.unpack_from("q", self._counters, slot)[0] + 1)
        if self._journal_fd < 0:
            return
        if self._lines >= self._size:
            os.close(self._journal_fd)
            os.replace(self._journal(), self._journal(old=True))
            self._open_journal()
            self._lines = 0
        line = memoryview(orjson.dumps(entry) + b"\n")
        while line:  # a short write (a full disk) raises next time round; the part written is skipped by readers
            line = line[os.write(self._journal_fd, line) :]
        self._lines += 1

    async def requests(self) -> list[Entry]:
        """Read in a thread: up to ``2 * size`` entries per worker are parsed, and the event
        loop goes on serving meanwhile."""
        return await asyncio.to_thread(self._read_journal)

    def _read_journal(self) -> list[Entry]:
        cleared = self._read(self._dir / "journal-cleared") or b""
        entries: dict[str, Entry] = {}
        for worker in {path.name.split(".")[0] for path in self._dir.glob("journal-*.jsonl")}:
            for line in self._worker_lines(worker).splitlines(keepends=True):
                if not line.endswith(b"\n"):  # a line a worker is writing now
                    continue
                try:
                    entry = orjson.loads(line)
                except orjson.JSONDecodeError:  # what a short write left
                    continue
                if entry["time"].encode() > cleared:
                    entries[entry["id"]] = entry
        ordered = sorted(entries.values(), key=lambda entry: entry["time"])
        return ordered[-self._size :] if self._size else []

    def _worker_lines(self, worker: str) -> bytes:
        """One worker's two files as of one moment: read again if it started a new file
        meanwhile (read across a rotation, a batch would be missed or read twice)."""
        current, old = self._dir / f"{worker}.jsonl", self._dir / f"{worker}.old.jsonl"
        content = b""
        for _ in range(10):
            before = _inode(current)
            content = (self._read(old) or b"") + (self._read(current) or b"")
            if before is not None and _inode(current) == before:
                break
        return content

    async def clear_requests(self) -> None:
        self._replace(self._dir / "journal-cleared", now().encode())

    async def counts(self) -> Counts:
        totals, baseline = self._sums("coverage-*.bin"), self._sums("coverage-baseline")
        width = len(_STATUSES)
        return {
            (self._names[slot // width], _STATUSES.start + slot % width): total - since
            for slot, (total, since) in enumerate(zip(totals, baseline, strict=True))
            if total > since
        }

    def _sums(self, pattern: str) -> array.array[int]:
        """The counters of every file matching ``pattern``, added up slot by slot."""
        totals = array.array("q", bytes(len(self._names) * len(_STATUSES) * 8))
        for path in self._dir.glob(pattern):
            counts = array.array("q", self._read(path) or b"")
            for slot in range(min(len(counts), len(totals))):
                totals[slot] += counts[slot]
        return totals

    # -- fault rules -----------------------------------------------------------------------

    async def add_fault(self, rule: dict[str, Any]) -> None:
        with self._changing_rules() as rules:
            rules.append({**rule, "seen": 0})

    async def faults(self) -> list[dict[str, Any]]:
        return [_shown(rule) for rule in orjson.loads(self._read(self._dir / "faults.json") or b"[]")]

    async def delete_fault(self, key: str) -> bool:
        with self._changing_rules() as rules:
            kept = [rule for rule in rules if rule["id"] != key]
            found = len(kept) < len(rules)
            rules[:] = kept
        return found

    async def clear_faults(self) -> None:
        with self._changing_rules() as rules:
            rules.clear()

    async def take_fault(self, operation: str) -> dict[str, Any] | None:
        if not any(rule["operationId"] == operation and rule.get("remaining", 1) > 0 for rule in self._current_rules()):
            return None  # the common case: no lock, no write
        with self._changing_rules() as rules:
            mine = [rule for rule in rules if rule["operationId"] == operation]
            for rule in mine:
                rule["seen"] += 1
            chosen = pick([(rule, rule["seen"]) for rule in mine])
        return _shown(chosen) if chosen else None

    async def reset(self, keep_coverage: bool = False) -> None:
        await self.clear_requests()
        await self.clear_faults()
        if not keep_coverage:
            self._replace(self._dir / "coverage-baseline", self._sums("coverage-*.bin").tobytes())

    def _current_rules(self) -> list[dict[str, Any]]:
        """The rules, read again only when their generation (a counter in shared memory that
        every change moves on) is not the one read last: no system call on a request."""
        assert self._generation is not None
        generation = struct.unpack_from("q", self._generation)[0]
        if generation != self._rules_seen:
            self._rules = orjson.loads(self._read(self._dir / "faults.json") or b"[]")
            self._rules_seen = generation
        return self._rules

    @contextlib.contextmanager
    def _changing_rules(self) -> Iterator[list[dict[str, Any]]]:
        """The rules as they are now, written back when the block ends, one worker at a time."""
        fd = os.open(self._dir / "faults.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            rules = orjson.loads(self._read(self._dir / "faults.json") or b"[]")
            yield rules
            self._replace(self._dir / "faults.json", orjson.dumps(rules))
            assert self._generation is not None
            struct.pack_into("q", self._generation, 0, struct.unpack_from("q", self._generation)[0] + 1)
        finally:
            os.close(fd)  # releases the lock

    # -- files -----------------------------------------------------------------------------

    @staticmethod
    def _read(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:  # not made yet, or a journal file rotated away while listed
            return None

    def _replace(self, path: Path, content: bytes) -> None:
        """Readers see the old content or the new, never a part."""
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        temporary.write_bytes(content)
        os.replace(temporary, path)


def _mapped(path: Path, size: int) -> mmap.mmap:
    """``size`` bytes of a file shared by the workers, in memory (zeros when new)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_size < size:  # a worker taking over a dead one's pid keeps its counts
            os.ftruncate(fd, size)
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:  # between a rotation's rename and the new file
        return None


def _shown(rule: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in rule.items() if key != "seen"}
