"""``LocalState``: a service's journal, coverage and fault rules in a directory that every worker
of one ``cms-mock --workers N`` shares (the JSON file and memory stores).

``cms-mock`` makes the directory before it starts its workers and names it in
``CMS_MOCK_STATE_DIR``; a single process makes a private one. Nothing in it must outlive the
run, so nothing is fsynced, and no worker ever waits for another on the request path:

- the journal: each worker appends lines to its own file, and starts a new one after
  ``size`` lines (the one before kept), so a worker holds at most ``2 * size`` entries on disk
  and the newest ``size`` of the whole service are always there. A line is the entry's head,
  request and response, apart, so that a read parses every head (small) but only the requests
  a ``body`` asks about and the entries of its page, and orders every worker's entries by time.
  Clearing writes the time it was cleared; older entries are left out.
- coverage: each worker counts in its own memory-mapped array (a slot per operation and
  status), one store of eight bytes per response; a reset keeps the sums at that moment as the
  baseline the counts start from.
- fault rules: one JSON file, changed under a ``flock`` in a thread (adding, deleting, and a
  request counted by a rule for its operation), and a generation counter in shared memory that
  every change moves on; a worker reads the file again only when the generation is not its own.

What waits on another process or reads a file (the lock, a journal read, the coverage files,
the rules) runs in a thread; on the event loop, a request only appends its journal line.
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import orjson

from cms_mock import exactjson
from cms_mock.state import Counts, Entry, Matcher, Page, Tally, coverage_key, head_matches, now, pick

logger = logging.getLogger(__name__)


_STATUSES = range(100, 600)
_PARTS = ("request", "response")
_T = TypeVar("_T")


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
        key = coverage_key(entry)
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
        line = memoryview(_line(entry))
        while line:  # a short write (a full disk) raises next time round; the part written is skipped by readers
            line = line[os.write(self._journal_fd, line) :]
        self._lines += 1

    async def requests(self, matcher: Matcher, limit: int | None) -> Page:
        """Read in a thread (the files are read whole once, the event loop goes on serving)."""
        if not self._size:
            return Page([], 0)
        return await asyncio.to_thread(self._query, matcher, limit)

    def _query(self, matcher: Matcher, limit: int | None) -> Page:
        """Two passes over every worker's files as of one moment: the first parses each line's
        head alone and keeps where it is, its time and whether its head matches; the newest
        ``size`` of those, newest first, are offered to a ``Tally``, which reads again only
        the lines it needs (the request of each, for a ``body``; the page's whole)."""
        cleared = self._read(self._dir / "journal-cleared") or b""
        with contextlib.ExitStack() as stack:
            found: list[tuple[str, bool, int, int, int]] = []  # (time, head matches, file, offset, length)
            for worker in {path.name.split(".")[0] for path in self._dir.glob("journal-*.jsonl")}:
                for file in self._worker_files(worker):
                    fd = stack.enter_context(file).fileno()
                    found.extend((time, head_matches(head, matcher), fd, offset, length) for time, head, offset, length in _heads(file, cleared))
            found.sort(key=lambda place: place[0], reverse=True)
            tally = Tally(matcher, limit)
            for _, matched, fd, offset, length in found[: self._size]:
                if matched:
                    line = _Line(fd, offset, length)
                    tally.offer(line.request, line.entry)
            return tally.page()

    def _worker_files(self, worker: str) -> list[BinaryIO]:
        """One worker's two files as of one moment, open (a rotation after this renames or
        removes them, but what is open stays readable as it was): opened again if it started
        a new file meanwhile (read across a rotation, a batch would be missed or read twice)."""
        current, old = self._dir / f"{worker}.jsonl", self._dir / f"{worker}.old.jsonl"
        for attempt in range(10):
            before = _inode(current)
            files = [file for file in (_opened(old), _opened(current)) if file is not None]
            if attempt == 9 or (before is not None and files and os.fstat(files[-1].fileno()).st_ino == before):
                break
            for file in files:
                file.close()
        return files

    async def clear_requests(self) -> None:
        await asyncio.to_thread(self._clear_requests)

    def _clear_requests(self) -> None:
        self._replace(self._dir / "journal-cleared", now().encode())

    async def counts(self) -> Counts:
        totals, baseline = await asyncio.to_thread(lambda: (self._sums("coverage-*.bin"), self._sums("coverage-baseline")))
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
    # Every change waits for the rule file's lock, which another worker may hold: in a thread,
    # so that the event loop goes on serving meanwhile.

    async def add_fault(self, rule: dict[str, Any]) -> None:
        await asyncio.to_thread(self._change_rules, lambda rules: rules.append({**rule, "seen": 0}))

    async def faults(self) -> list[dict[str, Any]]:
        rules = await asyncio.to_thread(self._read, self._dir / "faults.json")
        return [_listed(rule) for rule in orjson.loads(rules or b"[]")]

    async def delete_fault(self, key: str) -> bool:
        def delete(rules: list[dict[str, Any]]) -> bool:
            kept = [rule for rule in rules if rule["id"] != key]
            found = len(kept) < len(rules)
            rules[:] = kept
            return found

        return await asyncio.to_thread(self._change_rules, delete)

    async def clear_faults(self) -> None:
        await asyncio.to_thread(self._change_rules, list.clear)

    async def take_fault(self, operation: str) -> dict[str, Any] | None:
        if not any(rule["operationId"] == operation and rule.get("remaining", 1) > 0 for rule in await self._current_rules()):
            return None  # the common case: no lock, no write, no thread

        def take(rules: list[dict[str, Any]]) -> dict[str, Any] | None:
            mine = [rule for rule in rules if rule["operationId"] == operation]
            for rule in mine:
                rule["seen"] += 1
            return pick([(rule, rule["seen"]) for rule in mine])

        chosen = await asyncio.to_thread(self._change_rules, take)
        return _listed(chosen) if chosen else None

    async def reset(self, keep_coverage: bool = False) -> None:
        await asyncio.to_thread(self._reset, keep_coverage)

    def _reset(self, keep_coverage: bool) -> None:
        self._clear_requests()
        self._change_rules(list.clear)
        if not keep_coverage:
            self._replace(self._dir / "coverage-baseline", self._sums("coverage-*.bin").tobytes())

    async def _current_rules(self) -> list[dict[str, Any]]:
        """The rules, read again (in a thread) only when their generation (a counter in shared
        memory that every change moves on) is not the one read last: no system call on a request."""
        assert self._generation is not None
        generation = struct.unpack_from("q", self._generation)[0]
        if generation != self._rules_seen:
            raw = await asyncio.to_thread(self._read, self._dir / "faults.json")
            self._rules = orjson.loads(raw or b"[]")
            self._rules_seen = generation
        return self._rules

    def _change_rules(self, change: Callable[[list[dict[str, Any]]], _T]) -> _T:
        """``change`` made to the rules as they are now, written back, one worker at a time
        (blocks until the rule file's lock is free: never on the event loop)."""
        fd = os.open(self._dir / "faults.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            rules = orjson.loads(self._read(self._dir / "faults.json") or b"[]")
            result = change(rules)
            self._replace(self._dir / "faults.json", orjson.dumps(rules))
            assert self._generation is not None
            struct.pack_into("q", self._generation, 0, struct.unpack_from("q", self._generation)[0] + 1)
            return result
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


def _line(entry: Entry) -> bytes:
    """A journal line: the entry's head (all but its request and response: what a filter reads),
    its request, its response, each JSON, separated by tabs (JSON never holds one unescaped)."""
    head = {key: value for key, value in entry.items() if key not in _PARTS}
    return b"\t".join(exactjson.dumps(part) for part in (head, entry.get("request"), entry.get("response"))) + b"\n"


def _heads(file: BinaryIO, cleared: bytes) -> Iterator[tuple[str, Entry, int, int]]:
    """Each whole line's time, head, offset and length, of the lines after ``cleared``; a line
    a worker is writing now, or what a short write left (a line without its two tabs, or with
    more: the next line appended to a part), is skipped."""
    offset = 0
    for line in file:
        start, offset = offset, offset + len(line)
        if not line.endswith(b"\n") or line.count(b"\t") != len(_PARTS):
            continue
        try:
            head = exactjson.loads(line[: line.index(b"\t")])
        except ValueError:
            continue
        if isinstance(head, dict) and isinstance(head.get("time"), str) and head["time"].encode() > cleared:
            yield head["time"], head, start, len(line)


class _Line:
    """A journal line a first pass found, read again only for what is asked of it."""

    def __init__(self, fd: int, offset: int, length: int) -> None:
        self._fd, self._offset, self._length = fd, offset, length

    def _parts(self) -> list[bytes]:
        return os.pread(self._fd, self._length, self._offset)[:-1].split(b"\t")

    def request(self) -> dict[str, Any]:
        return _message(self._parts()[1])

    def entry(self) -> Entry:
        head, request, response = self._parts()
        return {**exactjson.loads(head), "request": _message(request), "response": _message(response)}


def _message(raw: bytes) -> dict[str, Any]:
    """A request or response as journaled; one that cannot be read (only what a short write
    left could be such) as an empty message."""
    try:
        message = exactjson.loads(raw)
    except ValueError:
        message = None
    return message if isinstance(message, dict) else {"headers": {}, "body": None, "truncated": True}


def _opened(path: Path) -> BinaryIO | None:
    try:
        return path.open("rb")
    except FileNotFoundError:  # not made yet, or rotated away while listed
        return None


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:  # between a rotation's rename and the new file
        return None


def _listed(rule: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in rule.items() if key != "seen"}
