"""The in-memory store (``--in-memory``): the samples at start, nothing written anywhere.

For throwaway runs and tests that want a clean service per start. Writes need no queue: each
is one dictionary change, made between two awaits, so none can interleave with another.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import Any

import orjson

from cms_mock.errors import NOTHING_CHANGED, SnapshotNotFound, StoreUnavailable
from cms_mock.stores import Check, Listing, Page, Query, Snapshot, keyed_object
from cms_mock.stores.records import RecordRules, dump, timestamp
from cms_mock.stores.selection import Selector


class MemoryStore:
    """Records keyed by id in one dictionary of compact JSON (a ``RecordStore``)."""

    def __init__(self, rules: RecordRules) -> None:
        self._rules = rules
        self._records: dict[str, bytes] = {}
        self._next_int = 1
        self._listing: Listing | None = None
        self._selector = Selector()
        self._snapshots: dict[str, tuple[Snapshot, dict[str, bytes]]] = {}
        self._closed = False

    async def open(self, create: bool = True) -> None:
        """The samples, every time: a memory store has nothing to find (``create`` changes nothing)."""
        await self.replace_all(self._rules.samples())

    async def close(self) -> None:
        self._closed = True

    async def list(self) -> Listing:
        if self._listing is None:
            self._listing = Listing(self._records.values())
        return self._listing

    async def find(self, query: Query) -> Page:
        return await self._selector.select(await self.list(), query)

    async def keyed(self) -> bytes:
        return keyed_object(await self.list(), self._rules.id_field)

    async def get(self, key: str) -> bytes:
        try:
            return self._records[key]
        except KeyError:
            raise self._rules.not_found(key) from None

    async def count(self) -> int:
        return len(self._records)

    async def create(self, fields: dict[str, Any]) -> bytes:
        self._writable()
        record = self._rules.create(fields, counted=self._next_int)
        if self._rules.counted_ids:
            self._next_int += 1
        return self._put(record)

    async def update(self, key: str, changes: dict[str, Any], check: Check | None = None) -> bytes:
        self._writable()
        if check is not None:
            check(self._records.get(key))
        return self._put(self._rules.update(orjson.loads(await self.get(key)), changes))

    async def delete(self, key: str, check: Check | None = None) -> None:
        self._writable()
        if check is not None:
            check(self._records.get(key))
        await self.get(key)
        del self._records[key]
        self._listing = None

    async def replace_all(self, records: Iterable[dict[str, Any]]) -> None:
        self._writable()
        made, following = self._rules.completed(records, self._next_int)
        self._records = {self._rules.key(record): dump(record) for record in made}
        self._next_int = following
        self._listing = None

    async def save_snapshot(self, name: str) -> tuple[Snapshot, bool]:
        self._writable()
        replaced = name in self._snapshots
        self._snapshots.pop(name, None)
        self._snapshots[name] = (Snapshot(name, len(self._records), timestamp()), dict(self._records))
        return self._snapshots[name][0], replaced

    async def snapshots(self) -> builtins.list[Snapshot]:
        return [snapshot for snapshot, _ in self._snapshots.values()]

    async def restore_snapshot(self, name: str) -> None:
        self._writable()
        if name not in self._snapshots:
            raise SnapshotNotFound(name)
        await self.replace_all(orjson.loads(body) for body in self._snapshots[name][1].values())

    async def delete_snapshot(self, name: str) -> None:
        self._writable()
        if self._snapshots.pop(name, None) is None:
            raise SnapshotNotFound(name)

    async def problem(self) -> str | None:
        return None

    def _writable(self) -> None:
        if self._closed:
            raise StoreUnavailable(f"the store is closed; {NOTHING_CHANGED}")

    def _put(self, record: dict[str, Any]) -> bytes:
        body = dump(record)
        self._records[self._rules.key(record)] = body
        self._listing = None
        return body
