"""The record store: every record in memory, every change on disk before it is acknowledged.

Records live in memory as JSON bytes, twice: compact (served as is by GET) and as the
pretty-printed fragment of the data file, so a write joins fragments instead of
re-serialising every record. Changes are queued and committed in groups by one writer task:
concurrent writes share one file replace and one set of fsyncs. Readers only ever see
committed data, so a write that fails leaves memory exactly as the file is.

Several processes may share one data directory: a commit holds an exclusive ``flock`` on a
permanent lock file, re-reads the data file first if another process replaced it, and
readers re-read it when its identity changed, so every process reads its own and every
other process's acknowledged writes.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime as dt
import fcntl
import logging
import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from cms_mock import storage_file
from cms_mock.errors import RecordNotFound, StoreUnavailable
from cms_mock.storage_file import Entry, Signature, encode

logger = logging.getLogger(__name__)

_DELETED = None
_T = TypeVar("_T")


def timestamp(after: str | None = None) -> str:
    """UTC now as the seed writes it, strictly later than ``after`` so updates always move it."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if after is not None:
        floor = dt.datetime.fromisoformat(after) + dt.timedelta(microseconds=1)
        now = max(now, floor)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%f")


class _Batch:
    """The view one group commit works on: committed records plus this batch's changes."""

    def __init__(self, committed: dict[str, Entry], next_int: int) -> None:
        self.committed = committed
        self.changes: dict[str, Entry | None] = {}
        self.next_int = next_int

    def get(self, key: str) -> dict[str, Any]:
        entry = self.changes[key] if key in self.changes else self.committed.get(key)
        if entry is None:
            raise RecordNotFound(key)
        record: dict[str, Any] = orjson.loads(entry[0])
        return record

    def put(self, record: dict[str, Any]) -> bytes:
        entry = encode(record)
        self.changes[str(record["id"])] = entry
        return entry[0]

    def delete(self, key: str) -> None:
        self.get(key)
        self.changes[key] = _DELETED

    def merged(self) -> dict[str, Entry]:
        records = dict(self.committed)
        for key, entry in self.changes.items():
            if entry is None:
                records.pop(key, None)
            else:
                records[key] = entry
        return records


class Store:
    """Records keyed by id, persisted to one JSON file (or nowhere, when ``path`` is None).

    :param ids: ``"uuid4"`` for server-made UUID strings, ``"int"`` for 1, 2, 3, ...
    :param samples: the records a new store starts with.
    """

    def __init__(self, path: Path | None, *, ids: str, samples: Callable[[], Iterable[dict[str, Any]]]) -> None:
        self.path = path
        self._ids = ids
        self._samples = samples
        self._records: dict[str, Entry] = {}
        self._next_int = 1
        self._list_cache: bytes | None = None
        self._signature: Signature | None = None
        self._lock_fd: int | None = None
        self._queue: list[tuple[Callable[[_Batch], Any], asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._committing = False
        self.last_error: str | None = None

    # -- life cycle ------------------------------------------------------------------------

    def open(self) -> None:
        """Load the data file, or create it with the sample records when it does not exist."""
        if self.path is None:
            self._adopt(self._sample_records())
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(storage_file.lock_path(self.path), os.O_RDWR | os.O_CREAT, 0o644)
        with self._locked_sync():
            storage_file.remove_temp_files(self.path)
            records = storage_file.load_or_recover(self.path)
            if records is None:
                records = self._sample_records()
                storage_file.replace(self.path, records)
                logger.info("created %s with %d sample records", self.path, len(records))
            self._adopt(records, storage_file.signature(self.path))

    async def close(self) -> None:
        """Finish every queued write, then release the lock file."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- reads -----------------------------------------------------------------------------

    def count(self) -> int:
        self._refresh()
        return len(self._records)

    def list(self) -> bytes:
        """Every record as one JSON array, built once per change rather than once per request."""
        self._refresh()
        if self._list_cache is None:
            parts = [entry[0] for entry in self._records.values()]
            if parts:  # the brackets go on the end pieces, so the whole is copied once, not three times
                parts[0] = b"[" + parts[0]
                parts[-1] = parts[-1] + b"]"
            self._list_cache = b",".join(parts) if parts else b"[]"
        return self._list_cache

    def get(self, key: str) -> bytes:
        self._refresh()
        entry = self._records.get(key)
        if entry is None:
            raise RecordNotFound(key)
        return entry[0]

    def problem(self) -> str | None:
        """Why the store cannot work now, or None when it can."""
        if self.path is None:
            return None
        directory = self.path.parent
        if not directory.is_dir():
            return f"data directory {directory} is missing"
        if not os.access(directory, os.W_OK):
            return f"data directory {directory} is not writable"
        if not os.access(self.path, os.R_OK):
            return f"data file {self.path} is not readable"
        return self.last_error

    # -- writes ----------------------------------------------------------------------------

    async def create(self, fields: dict[str, Any]) -> bytes:
        def change(batch: _Batch) -> bytes:
            if self._ids == "int":
                new_id: object = batch.next_int
                batch.next_int += 1
            else:
                new_id = str(uuid.uuid4())
            now = timestamp()
            return batch.put({"id": new_id, **fields, "created_at": now, "updated_at": now})

        return await self._submit(change)

    async def update(self, key: str, changes: dict[str, Any]) -> bytes:
        def change(batch: _Batch) -> bytes:
            record = batch.get(key)
            record.update(changes)
            record["updated_at"] = timestamp(after=record["updated_at"])
            return batch.put(record)

        return await self._submit(change)

    async def delete(self, key: str) -> None:
        await self._submit(lambda batch: batch.delete(key))

    # -- the writer ------------------------------------------------------------------------

    async def _submit(self, change: Callable[[_Batch], _T]) -> _T:
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._queue.append((change, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            queued, self._queue = self._queue, []
            try:
                await self._commit(queued)
            except Exception as exc:  # never leave a request waiting forever
                logger.exception("commit failed")
                for _, future in queued:
                    if not future.done():
                        future.set_exception(StoreUnavailable(str(exc)))

    async def _commit(self, queued: builtins.list[tuple[Callable[[_Batch], Any], asyncio.Future[Any]]]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, Exception | None]] = []
        async with self._locked():
            if self.path is not None:
                fresh = await asyncio.to_thread(self._read_if_changed)
                if fresh is not None:
                    self._adopt(*fresh)
            self._committing = True  # caught up and holding the lock: only we change the file now
            try:
                batch = _Batch(self._records, self._next_int)
                for change, future in queued:
                    try:
                        outcomes.append((future, change(batch), None))
                    except RecordNotFound as exc:
                        outcomes.append((future, None, exc))
                if batch.changes:
                    failure = await self._persist(batch)
                    if failure is not None:
                        outcomes = [(future, None, error or failure) for future, _, error in outcomes]
            finally:
                self._committing = False
        for future, result, error in outcomes:
            if future.done():  # the client went away; the change stands
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    async def _persist(self, batch: _Batch) -> StoreUnavailable | None:
        """Make the batch durable, then visible; on failure neither, and say why."""
        records = batch.merged()
        signature = None
        if self.path is not None:
            try:
                signature = await asyncio.to_thread(storage_file.replace, self.path, records)
            except OSError as exc:
                self.last_error = f"cannot write {self.path}: {exc}"
                logger.error("write failed, %d changes refused: %s", len(batch.changes), exc)
                with contextlib.suppress(Exception):  # memory becomes what the file is, whatever step failed
                    self._catch_up()
                return StoreUnavailable(str(exc))
            self.last_error = None
        self._install(records, signature)
        self._next_int = max(self._next_int, batch.next_int)
        return None

    # -- file and lock ---------------------------------------------------------------------

    def _install(self, records: dict[str, Entry], signature: Signature | None = None) -> None:
        self._records = records
        self._list_cache = None
        if signature is not None:
            self._signature = signature

    def _adopt(self, records: dict[str, Entry], signature: Signature | None = None) -> None:
        """Install records read from elsewhere (the file, the samples): ids go on after theirs."""
        self._install(records, signature)
        if self._ids == "int":  # never hand out an id again while this process runs
            self._next_int = max(self._next_int, max((int(k) for k in records), default=0) + 1)

    def _sample_records(self) -> dict[str, Entry]:
        return {str(r["id"]): encode(r) for r in self._samples()}

    def _read_if_changed(self) -> tuple[dict[str, Entry], Signature] | None:
        assert self.path is not None
        signature = storage_file.signature(self.path)
        if signature is None or signature == self._signature:
            return None  # unchanged, or deleted under us: memory holds the last acknowledged state
        logger.info("%s was changed by another process; re-reading it", self.path)
        records = storage_file.load(self.path, known=self._records)
        if records is None:
            return None
        return records, signature

    def _catch_up(self) -> None:
        fresh = self._read_if_changed()
        if fresh is not None:
            self._adopt(*fresh)

    def _refresh(self) -> None:
        """Pick up another process's writes; our own commit holds the lock, so skip it then."""
        if self.path is not None and not self._committing:
            self._catch_up()

    @contextlib.contextmanager
    def _locked_sync(self) -> Any:
        assert self._lock_fd is not None
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextlib.asynccontextmanager
    async def _locked(self) -> Any:
        if self._lock_fd is None:
            yield
            return
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            await asyncio.to_thread(fcntl.flock, self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
