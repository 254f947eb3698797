"""The JSON-file store (the default): every record in memory, every change on disk before it
is acknowledged.

Records live in memory as JSON bytes, twice: compact (served as is by GET) and as the
pretty-printed fragment of the data file, so a write joins fragments instead of
re-serialising every record. Changes are queued and committed in groups by one writer task:
concurrent writes share one file replace and one set of fsyncs. Readers only ever see
committed data, so a write that fails leaves memory exactly as the file is.

Several processes may share one data directory: a commit holds an exclusive ``flock`` on a
permanent lock file, re-reads the data file first if another process replaced it, and
readers re-read it when its identity changed, so every process reads its own and every
other process's acknowledged writes.

The event loop only ever ``stat``s the file: waiting for the lock, reading and parsing the
whole file, writing and syncing it all run in a thread.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime as dt
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from cms_mock import metrics
from cms_mock.errors import NOTHING_CHANGED, ApiError, CorruptDataFile, SnapshotNotFound, StoreRefused, StoreUnavailable
from cms_mock.stores import Check, Listing, Page, Query, Snapshot, datafile, keyed_object
from cms_mock.stores.datafile import Entry, Signature, encode
from cms_mock.stores.records import RecordRules
from cms_mock.stores.selection import Selector

logger = logging.getLogger(__name__)

_DELETED = None
_T = TypeVar("_T")


class _Batch:
    """The view one group commit works on: committed records plus this batch's changes."""

    def __init__(self, committed: dict[str, Entry], next_int: int, rules: RecordRules) -> None:
        self.committed = committed
        self.changes: dict[str, Entry | None] = {}
        self.next_int = next_int
        self.rules = rules
        self.replaced = False  # every record replaced: a change even when the new set is empty

    def current(self, key: str) -> bytes | None:
        """The record's JSON as served now, or None."""
        entry = self.changes[key] if key in self.changes else self.committed.get(key)
        return None if entry is None else entry[0]

    def get(self, key: str) -> dict[str, Any]:
        entry = self.changes[key] if key in self.changes else self.committed.get(key)
        if entry is None:
            raise self.rules.not_found(key)
        record: dict[str, Any] = orjson.loads(entry[0])
        return record

    def put(self, record: dict[str, Any]) -> bytes:
        entry = encode(record)
        self.changes[str(record["id"])] = entry
        return entry[0]

    def delete(self, key: str) -> None:
        self.get(key)
        self.changes[key] = _DELETED

    def replace_all(self, records: Iterable[dict[str, Any]]) -> None:
        """Every record becomes one of ``records``, completed as on create (encoded first: a bad
        one changes nothing)."""
        given = builtins.list(records)
        if self.rules.counted_ids:
            self.next_int = self.rules.next_id(self.next_int, (str(record["id"]) for record in given if "id" in record))
        self.replace_entries({str(record["id"]): encode(record) for record in self.rules.complete(given, self._count)})

    def replace_entries(self, entries: dict[str, Entry]) -> None:
        if self.rules.counted_ids:
            self.next_int = self.rules.next_id(self.next_int, entries)
        self.committed, self.changes, self.replaced = {}, dict(entries), True

    def _count(self) -> int:
        self.next_int += 1
        return self.next_int - 1

    def merged(self) -> dict[str, Entry]:
        records = dict(self.committed)
        for key, entry in self.changes.items():
            if entry is None:
                records.pop(key, None)
            else:
                records[key] = entry
        return records


class FileStore:
    """Records keyed by id, persisted to one JSON file in the seed's format (a ``RecordStore``)."""

    def __init__(self, path: Path, rules: RecordRules) -> None:
        self.path = path
        self._rules = rules
        self._records: dict[str, Entry] = {}
        self._next_int = 1
        self._list_cache: Listing | None = None
        self._selector = Selector()
        self._signature: Signature | None = None
        self._lock_fd: int | None = None
        self._queue: list[tuple[Callable[[_Batch], Any], asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._reading = asyncio.Lock()  # one re-read of the file at a time; a commit holds it from its catch-up to its install
        self._closed = False
        self._damaged: tuple[Signature, str] | None = None  # the file as another hand left it, and why it cannot be read
        self._unsynced: str | None = None  # a write that is in place but whose directory sync failed
        self._probed: tuple[float, str | None] = (-1.0, None)

    # -- life cycle ------------------------------------------------------------------------

    async def open(self, create: bool = True) -> None:
        """Load the data file, or create it with the sample records when it does not exist.
        ``create=False`` changes nothing: no file, or a damaged one, is refused, not made or repaired.
        (In a thread: another worker may hold the lock, and the file may be large.)"""
        await asyncio.to_thread(self._open, create)

    def _open(self, create: bool) -> None:
        if self.path.is_symlink():  # write through to the target: replacing the link would orphan it
            target = self.path.resolve()
            logger.info("%s is a link to %s: the data, its .bak and its lock live beside the target", self.path, target)
            self.path = target
        if not create:
            records = datafile.load(self.path)
            if records is None:
                raise StoreRefused(f"there is no data file at {self.path}")
            self._adopt(records, datafile.signature(self.path))
            self._read_next_id()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked_sync():
            datafile.remove_temp_files(self.path)
            records = datafile.load_or_recover(self.path)
            if records is None:
                records = self._sample_records()
                datafile.replace(self.path, records)
                logger.info("created %s with %d sample records", self.path, len(records))
            self._adopt(records, datafile.signature(self.path))
            self._read_next_id()

    async def close(self) -> None:
        """Finish every queued write, then release the lock file."""
        self._closed = True  # from now on a write is refused, never made without the lock
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- reads -----------------------------------------------------------------------------

    async def count(self) -> int:
        await self._refresh()
        return len(self._records)

    async def list(self) -> Listing:
        """Every record's JSON, in creation order.

        One list per version of the records, shared by every reader of that version, and the
        records' bytes are shared by every version: a reader that stalls holds a list of
        references (0.8 MB at 100,000 customers), not a 35 MB body of its own.
        """
        await self._refresh()
        if self._list_cache is None:
            self._list_cache = Listing(entry[0] for entry in self._records.values())
        return self._list_cache

    async def find(self, query: Query) -> Page:
        return await self._selector.select(await self.list(), query)

    async def keyed(self) -> bytes:
        return keyed_object(await self.list())

    async def get(self, key: str) -> bytes:
        await self._refresh()
        entry = self._records.get(key)
        if entry is None:
            raise self._rules.not_found(key)
        return entry[0]

    async def problem(self) -> str | None:
        """Why the store cannot work now, or None when it can: the present, not the last failure."""
        await self._refresh()
        if self._damaged is not None:
            return self._damaged[1]
        directory = self.path.parent
        if not directory.is_dir():
            return f"data directory {directory} is missing"
        if not os.access(self.path, os.R_OK):
            return f"data file {self.path} is not readable"
        return await self._probe() or self._unsynced

    async def _probe(self) -> str | None:
        """Whether a small file can be written and synced in the data directory now (checked at
        most once a second, so a busy health check costs no more than one fsync a second; in a
        thread, as a sync waits on the disk)."""
        when, result = self._probed
        now = time.monotonic()
        if now - when >= 1.0:
            result = await asyncio.to_thread(self._write_probe)
            self._probed = (now, result)
        return result

    def _write_probe(self) -> str | None:
        probe = self.path.with_name(f".{self.path.name}.probe-{os.getpid()}")
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, b"probe")
                os.fsync(fd)
            finally:
                os.close(fd)
            return None
        except OSError as exc:
            return f"data directory {self.path.parent} cannot take a write: {exc.strerror or exc}"
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()

    # -- writes ----------------------------------------------------------------------------

    async def create(self, fields: dict[str, Any]) -> bytes:
        def change(batch: _Batch) -> bytes:
            record = self._rules.create(fields, counted=batch.next_int)
            if self._rules.counted_ids:
                batch.next_int += 1
            return batch.put(record)

        return await self._submit(change)

    async def update(self, key: str, changes: dict[str, Any], check: Check | None = None) -> bytes:
        def change(batch: _Batch) -> bytes:
            if check is not None:
                check(batch.current(key))
            return batch.put(self._rules.update(batch.get(key), changes))

        return await self._submit(change)

    async def delete(self, key: str, check: Check | None = None) -> None:
        def change(batch: _Batch) -> None:
            if check is not None:
                check(batch.current(key))
            batch.delete(key)

        await self._submit(change)

    async def replace_all(self, records: Iterable[dict[str, Any]]) -> None:
        await self._submit(lambda batch: batch.replace_all(records))

    # -- snapshots: the data file's format, in a directory beside it -----------------------

    async def save_snapshot(self, name: str) -> tuple[Snapshot, bool]:
        """The records as committed when the writer reaches this request (it holds the lock and
        has caught up with every process then), written after: no write is half-seen, and the
        writer's lock is never taken twice."""
        records: dict[str, Entry] = await self._submit(lambda batch: batch.committed)
        target = self._snapshot_path(name)
        try:
            return await asyncio.to_thread(self._write_snapshot, target, records)
        except OSError as exc:
            raise StoreUnavailable(f"the snapshot could not be written: {exc}; {NOTHING_CHANGED}") from None

    async def snapshots(self) -> builtins.list[Snapshot]:
        return await asyncio.to_thread(self._snapshots)

    def _snapshots(self) -> builtins.list[Snapshot]:
        found = []
        for path in self._snapshot_dir().glob("*.json"):
            with contextlib.suppress(FileNotFoundError, CorruptDataFile):  # deleted meanwhile; or not ours
                found.append(self._described(path, len(datafile.load(path) or {})))
        return sorted(found, key=lambda snapshot: (snapshot.created_at, snapshot.name))

    async def restore_snapshot(self, name: str) -> None:
        try:
            entries = await asyncio.to_thread(datafile.load, self._snapshot_path(name))
        except CorruptDataFile as exc:
            raise StoreUnavailable(f"snapshot {name} cannot be read ({exc.reason}); {NOTHING_CHANGED}") from None
        if entries is None:
            raise SnapshotNotFound(name)
        await self._submit(lambda batch: batch.replace_entries(entries))

    async def delete_snapshot(self, name: str) -> None:
        self._writable()
        try:
            await asyncio.to_thread(self._snapshot_path(name).unlink)
        except FileNotFoundError:
            raise SnapshotNotFound(name) from None
        try:
            await asyncio.to_thread(datafile.sync_directory, self._snapshot_dir())
        except OSError as exc:  # gone, but not surely for good: answered as done (a retry would 404), said in the log
            logger.error("snapshot %s was deleted but its directory could not be synced: %s", name, exc)

    def _snapshot_dir(self) -> Path:
        return self.path.with_name(self.path.name + ".snapshots")

    def _snapshot_path(self, name: str) -> Path:
        return self._snapshot_dir() / f"{name}.json"

    def _write_snapshot(self, target: Path, records: dict[str, Entry]) -> tuple[Snapshot, bool]:
        """The snapshot written, and whether it replaced one of that name."""
        if not target.parent.is_dir():
            target.parent.mkdir(exist_ok=True)
            datafile.sync_directory(target.parent.parent)
        replaced = target.exists()
        with datafile.writing(target) as handle:
            handle.writelines(datafile.render(records))
        return self._described(target, len(records)), replaced

    @staticmethod
    def _described(path: Path, records: int) -> Snapshot:
        saved = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).replace(tzinfo=None)
        return Snapshot(path.stem, records, saved.strftime("%Y-%m-%dT%H:%M:%S.%f"))

    def _writable(self) -> None:
        if self._closed:
            raise StoreUnavailable(f"the store is closed; {NOTHING_CHANGED}")

    # -- the writer ------------------------------------------------------------------------

    async def _submit(self, change: Callable[[_Batch], _T]) -> _T:
        self._writable()
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
        async with self._locked(), self._reading:  # only we change the file until both are let go
            await self._catch_up()
            if self._rules.counted_ids:
                await asyncio.to_thread(self._read_next_id)
            if self._damaged is not None:  # never write over a file someone else damaged
                refused = StoreUnavailable(self._damaged[1])
                outcomes = [(future, None, refused) for _, future in queued]
                queued = []
            batch = _Batch(self._records, self._next_int, self._rules)
            for change, future in queued:
                try:
                    outcomes.append((future, change(batch), None))
                except ApiError as exc:
                    outcomes.append((future, None, exc))
                except Exception as exc:  # this change alone fails; its neighbours go on
                    logger.exception("a change could not be made")
                    outcomes.append((future, None, ApiError(f"The change could not be made: {type(exc).__name__}: {exc}")))
            if batch.changes or batch.replaced:
                started = time.perf_counter()
                failure = await self._persist(batch)
                metrics.COMMIT_DURATION.labels(self.path.name).observe(time.perf_counter() - started)
                metrics.COMMIT_GROUP.labels(self.path.name).observe(len(queued))
                if failure is not None:
                    outcomes = [(future, None, error or failure) for future, _, error in outcomes]
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
        try:
            if batch.next_int > self._next_int:  # the ids given out are durable before any record holds one
                await asyncio.to_thread(datafile.write_small, datafile.ids_path(self.path), f"{batch.next_int}\n".encode())
            signature = await asyncio.to_thread(datafile.replace, self.path, records)
            self._unsynced = None
        except datafile.Unsynced as exc:  # in place and served: answered as done, reported by /health
            logger.error("%s; %d changes are in place but may not survive a power cut", exc, len(batch.changes))
            self._unsynced = str(exc)
            signature = exc.signature
        except OSError as exc:
            logger.error("write failed, %d changes refused: %s", len(batch.changes), exc)
            self._probed = (-1.0, None)  # the next health check looks again
            with contextlib.suppress(Exception):  # memory becomes what the file is, whatever step failed
                await self._catch_up()
            return StoreUnavailable(f"{exc}; {NOTHING_CHANGED}")
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
        if self._rules.counted_ids:  # never hand out an id again while this process runs
            self._next_int = self._rules.next_id(self._next_int, records)

    def _sample_records(self) -> dict[str, Entry]:
        return {str(r["id"]): encode(r) for r in self._rules.samples()}

    def _stale(self, signature: Signature | None) -> bool:
        """Whether the file whose signature this is holds what memory does not."""
        if signature is None or signature == self._signature:
            return False  # unchanged, or deleted under us: memory holds the last acknowledged state
        return self._damaged is None or self._damaged[0] != signature  # else still the damaged file: keep serving the last good state

    def _read_file(self, known: dict[str, Entry]) -> dict[str, Entry] | CorruptDataFile | None:
        """The whole file read and parsed (in a thread: ``known`` is never changed in place, only
        replaced, so the loop goes on serving it meanwhile)."""
        logger.debug("%s was changed by another process; re-reading it", self.path)
        try:
            return datafile.load(self.path, known=known)
        except CorruptDataFile as exc:
            return exc

    def _read_next_id(self) -> None:
        """Ids go on from the durable high-water mark, so a deleted id is never given out again,
        by any worker, before or after a restart."""
        if not self._rules.counted_ids:
            return
        with contextlib.suppress(FileNotFoundError, ValueError):
            self._next_int = max(self._next_int, int(datafile.ids_path(self.path).read_text()))

    async def _catch_up(self) -> None:
        """Memory becomes what the file holds, when another hand changed it (call holding ``_reading``)."""
        signature = datafile.signature(self.path)
        if not self._stale(signature):
            return
        assert signature is not None
        found = await asyncio.to_thread(self._read_file, self._records)
        if isinstance(found, CorruptDataFile):
            logger.error("%s; serving the last good state, refusing writes until the file is repaired", found)
            self._damaged = (signature, f"data file {self.path} was changed by hand and cannot be read ({found.reason}); repair or restore it")
            return
        self._damaged = None
        if found is not None:
            self._adopt(found, signature)

    async def _refresh(self) -> None:
        """Pick up another process's writes: a ``stat`` on the loop, and only when it shows a new
        file, one re-read off it that every reader arriving meanwhile waits for, then finds done.
        A commit holds ``_reading`` from its catch-up to its install, so a reader that sees the
        file our own commit is putting in place waits for the commit rather than reading the file."""
        if self._stale(datafile.signature(self.path)):
            async with self._reading:
                await self._catch_up()

    def _lock(self, wait: bool = True) -> int | None:
        """Hold an exclusive lock on the lock file that is on disk now, and return its descriptor
        (None when ``wait`` is false and another process holds it).

        Someone may delete or replace the lock file while we wait for it: a lock on a file that
        is no longer at that path excludes nobody (the next writer opens the new one), so after
        taking it we check it is still the file at the path, and start again if not.
        """
        lock = datafile.lock_path(self.path)
        while True:
            if self._lock_fd is None:
                self._lock_fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None
            held = os.fstat(self._lock_fd)
            try:
                current = os.stat(lock)
            except FileNotFoundError:
                current = None
            if current is not None and (current.st_ino, current.st_dev) == (held.st_ino, held.st_dev):
                return self._lock_fd
            logger.warning("%s was deleted or replaced while the service runs; locking the file there now", lock)
            os.close(self._lock_fd)  # closing releases the stale lock
            self._lock_fd = None

    @contextlib.contextmanager
    def _locked_sync(self) -> Any:
        fd = self._lock()
        assert fd is not None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    @contextlib.asynccontextmanager
    async def _locked(self) -> Any:
        fd = self._lock(wait=False)  # free most of the time: no thread hop then
        if fd is None:
            fd = await asyncio.to_thread(self._lock)
        assert fd is not None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
