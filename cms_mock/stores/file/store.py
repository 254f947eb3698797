"""``FileStore``: reads served from memory, writes made through the group commit."""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cms_mock.errors import StoreRefused
from cms_mock.stores import Check, Listing, Page, Query, Snapshot, datafile, keyed_object
from cms_mock.stores.datafile import encode
from cms_mock.stores.file.health import Health
from cms_mock.stores.file.lock import FileLock
from cms_mock.stores.file.mirror import Mirror
from cms_mock.stores.file.snapshots import Snapshots
from cms_mock.stores.file.writer import Batch, Writer
from cms_mock.stores.records import RecordRules
from cms_mock.stores.selection import Selector

logger = logging.getLogger(__name__)


class FileStore:
    """Records keyed by id, persisted to one JSON file in the seed's format (a ``RecordStore``)."""

    def __init__(self, path: Path, rules: RecordRules) -> None:
        self._rules = rules
        self._selector = Selector()
        self._place(path)

    def _place(self, path: Path) -> None:
        """The parts that name the data file or files beside it, for the data file at ``path``."""
        self.path = path
        self._lock = FileLock(path)
        self._mirror = Mirror(path, self._rules)
        self._health = Health(path)
        self._writer = Writer(path, self._rules, self._lock, self._mirror, self._health)
        self._snapshots = Snapshots(path, self._writer, self._rules.id_field)

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
            self._place(target)
        if not create:
            records = datafile.load(self.path, id_field=self._rules.id_field)
            if records is None:
                raise StoreRefused(f"there is no data file at {self.path}")
            self._mirror.serve_loaded(records, datafile.signature(self.path))
            self._mirror.read_next_id()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock.held_sync():
            datafile.remove_temp_files(self.path)
            records = datafile.load_or_recover(self.path, self._rules.id_field)
            if records is None:
                records = {self._rules.key(record): encode(record, self._rules.id_field) for record in self._rules.samples()}
                datafile.replace(self.path, records)
                logger.info("created %s with %d sample records", self.path, len(records))
            self._mirror.serve_loaded(records, datafile.signature(self.path))
            self._mirror.read_next_id()

    async def close(self) -> None:
        """Finish every queued write, then release the lock file."""
        await self._writer.close()
        self._lock.close()

    # -- reads -----------------------------------------------------------------------------

    async def count(self) -> int:
        await self._mirror.catch_up()
        return len(self._mirror.records)

    async def list(self) -> Listing:
        """Every record's JSON, in creation order (see ``Mirror.listing``): a reader that stalls
        holds a list of references, not a body of its own."""
        await self._mirror.catch_up()
        return self._mirror.listing()

    async def find(self, query: Query) -> Page:
        return await self._selector.select(await self.list(), query)

    async def keyed(self) -> bytes:
        return keyed_object(await self.list(), self._rules.id_field)

    async def get(self, key: str) -> bytes:
        await self._mirror.catch_up()
        stored = self._mirror.records.get(key)
        if stored is None:
            raise self._rules.not_found(key)
        return stored[0]

    async def problem(self) -> str | None:
        """Why the store cannot work now, or None when it can: the present, not the last failure."""
        await self._mirror.catch_up()
        if self._mirror.damage is not None:
            return self._mirror.damage.reason
        return await self._health.problem()

    # -- writes ----------------------------------------------------------------------------

    async def create(self, fields: dict[str, Any]) -> bytes:
        def change(batch: Batch) -> bytes:
            record = self._rules.create(fields, counted=batch.next_int)
            if self._rules.counted_ids:
                batch.next_int += 1
            return batch.put(record)

        return await self._writer.submit(change)

    async def update(self, key: str, changes: dict[str, Any], check: Check | None = None) -> bytes:
        def change(batch: Batch) -> bytes:
            if check is not None:
                check(batch.current(key))
            return batch.put(self._rules.update(batch.get(key), changes))

        return await self._writer.submit(change)

    async def delete(self, key: str, check: Check | None = None) -> None:
        def change(batch: Batch) -> None:
            if check is not None:
                check(batch.current(key))
            batch.delete(key)

        await self._writer.submit(change)

    async def replace_all(self, records: Iterable[dict[str, Any]]) -> None:
        await self._writer.submit(lambda batch: batch.replace_all(records))

    # -- snapshots -------------------------------------------------------------------------

    async def save_snapshot(self, name: str) -> tuple[Snapshot, bool]:
        return await self._snapshots.save(name)

    async def snapshots(self) -> builtins.list[Snapshot]:
        return await self._snapshots.listed()

    async def restore_snapshot(self, name: str) -> None:
        await self._snapshots.restore(name)

    async def delete_snapshot(self, name: str) -> None:
        await self._snapshots.delete(name)
