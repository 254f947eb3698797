"""The group commit: changes are queued and committed in groups by one writer task, so
concurrent writes share one file replace and one set of fsyncs. A commit holds the lock file
and has caught up with every process; a write that fails leaves memory exactly as the file is.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from cms_mock import metrics
from cms_mock.errors import NOTHING_CHANGED, ApiError, StoreUnavailable
from cms_mock.stores import datafile
from cms_mock.stores.datafile import RecordBytes, encode
from cms_mock.stores.file.health import Health
from cms_mock.stores.file.lock import FileLock
from cms_mock.stores.file.mirror import Mirror
from cms_mock.stores.records import RecordRules

logger = logging.getLogger(__name__)

_DELETED = None
_T = TypeVar("_T")


class Batch:
    """The view one group commit works on: committed records plus this batch's changes."""

    def __init__(self, committed: dict[str, RecordBytes], next_int: int, rules: RecordRules) -> None:
        self.committed = committed
        self.changes: dict[str, RecordBytes | None] = {}
        self.next_int = next_int
        self.rules = rules
        self.replaced = False  # every record replaced: a change even when the new set is empty

    def current(self, key: str) -> bytes | None:
        """The record's JSON as served now, or None."""
        stored = self.changes[key] if key in self.changes else self.committed.get(key)
        return None if stored is None else stored[0]

    def get(self, key: str) -> dict[str, Any]:
        compact = self.current(key)
        if compact is None:
            raise self.rules.not_found(key)
        record: dict[str, Any] = orjson.loads(compact)
        return record

    def put(self, record: dict[str, Any]) -> bytes:
        stored = encode(record, self.rules.id_field)
        self.changes[self.rules.key(record)] = stored
        return stored[0]

    def delete(self, key: str) -> None:
        self.get(key)
        self.changes[key] = _DELETED

    def replace_all(self, records: Iterable[dict[str, Any]]) -> None:
        """Every record becomes one of ``records``, completed as on create (encoded first: a bad
        one changes nothing)."""
        given = builtins.list(records)
        if self.rules.counted_ids:
            self.next_int = self.rules.next_id(self.next_int, (self.rules.key(record) for record in given if self.rules.id_field in record))
        self.replace_stored({self.rules.key(record): encode(record, self.rules.id_field) for record in self.rules.complete(given, self._count)})

    def replace_stored(self, records: dict[str, RecordBytes]) -> None:
        if self.rules.counted_ids:
            self.next_int = self.rules.next_id(self.next_int, records)
        self.committed, self.changes, self.replaced = {}, dict(records), True

    @property
    def changed(self) -> bool:
        return bool(self.changes) or self.replaced

    def _count(self) -> int:
        self.next_int += 1
        return self.next_int - 1

    def merged(self) -> dict[str, RecordBytes]:
        records = dict(self.committed)
        for key, stored in self.changes.items():
            if stored is None:
                records.pop(key, None)
            else:
                records[key] = stored
        return records


Change = Callable[[Batch], Any]
"""One request's change, made to the batch; what it returns is the request's answer."""

_Queued = tuple[Change, asyncio.Future[Any]]
_Outcome = tuple[asyncio.Future[Any], Any, Exception | None]
"""A request's future, and its answer or the error it gets."""


class Writer:
    """The one task that commits queued changes, in groups, under the lock file."""

    def __init__(self, path: Path, rules: RecordRules, lock: FileLock, mirror: Mirror, health: Health) -> None:
        self._path = path
        self._rules = rules
        self._lock = lock
        self._mirror = mirror
        self._health = health
        self._queue: list[_Queued] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def submit(self, change: Callable[[Batch], _T]) -> _T:
        """Queue ``change`` for the next commit; its answer once the commit is durable."""
        self.writable()
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._queue.append((change, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    def writable(self) -> None:
        """Refuse a write once the store is closed: none is ever made without the lock."""
        if self._closed:
            raise StoreUnavailable(f"the store is closed; {NOTHING_CHANGED}")

    async def close(self) -> None:
        """Refuse new writes, then finish every queued one."""
        self._closed = True
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

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

    async def _commit(self, queued: builtins.list[_Queued]) -> None:
        async with self._lock.held(), self._mirror.exclusive():  # only we change the file until both are let go
            outcomes = await self._outcomes(queued)
        for future, result, error in outcomes:
            if future.done():  # the client went away; the change stands
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)

    async def _outcomes(self, queued: builtins.list[_Queued]) -> builtins.list[_Outcome]:
        """Each change made to one batch, and the batch made durable, then visible."""
        if self._rules.counted_ids:
            await asyncio.to_thread(self._mirror.read_next_id)
        damage = self._mirror.damage
        if damage is not None:  # never write over a file someone else damaged
            refused = StoreUnavailable(damage.reason)
            return [(future, None, refused) for _, future in queued]
        batch = Batch(self._mirror.records, self._mirror.next_int, self._rules)
        outcomes = [_made(change, future, batch) for change, future in queued]
        if batch.changed:
            started = time.perf_counter()
            failure = await self._persist(batch)
            metrics.COMMIT_DURATION.labels(self._path.name).observe(time.perf_counter() - started)
            metrics.COMMIT_GROUP.labels(self._path.name).observe(len(queued))
            if failure is not None:
                outcomes = [(future, None, error or failure) for future, _, error in outcomes]
        return outcomes

    async def _persist(self, batch: Batch) -> StoreUnavailable | None:
        """Make the batch durable, then visible; on failure neither, and say why."""
        records = batch.merged()
        try:
            if batch.next_int > self._mirror.next_int:  # the ids given out are durable before any record holds one
                await asyncio.to_thread(datafile.write_small, datafile.ids_path(self._path), f"{batch.next_int}\n".encode())
            signature = await asyncio.to_thread(datafile.replace, self._path, records)
            self._health.unsynced = None
        except datafile.Unsynced as exc:  # in place and served: answered as done, reported by /health
            logger.error("%s; %d changes are in place but may not survive a power cut", exc, len(batch.changes))
            self._health.unsynced = str(exc)
            signature = exc.signature
        except OSError as exc:
            logger.error("write failed, %d changes refused: %s", len(batch.changes), exc)
            self._health.look_again()
            with contextlib.suppress(Exception):  # memory becomes what the file is, whatever step failed
                await self._mirror.reread()
            return StoreUnavailable(f"{exc}; {NOTHING_CHANGED}")
        self._mirror.serve_written(records, signature, batch.next_int)
        return None


def _made(change: Change, future: asyncio.Future[Any], batch: Batch) -> _Outcome:
    """``change`` made to ``batch``: its answer, or the error it alone gets (its neighbours go on)."""
    try:
        return future, change(batch), None
    except ApiError as exc:
        return future, None, exc
    except Exception as exc:
        logger.exception("a change could not be made")
        return future, None, ApiError(f"The change could not be made: {type(exc).__name__}: {exc}")
