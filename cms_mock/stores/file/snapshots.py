"""Snapshots of the JSON-file store: each in the data file's format, in a directory beside it."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime as dt
import logging
from pathlib import Path

from cms_mock.errors import NOTHING_CHANGED, CorruptDataFile, SnapshotNotFound, StoreUnavailable
from cms_mock.stores import Snapshot, datafile
from cms_mock.stores.datafile import RecordBytes
from cms_mock.stores.file.writer import Writer

logger = logging.getLogger(__name__)


class Snapshots:
    """The snapshot files of one data file (records keyed by their ``id_field``); saved and
    restored through its writer."""

    def __init__(self, data: Path, writer: Writer, id_field: str) -> None:
        self._directory = data.with_name(data.name + ".snapshots")
        self._writer = writer
        self._id_field = id_field

    async def save(self, name: str) -> tuple[Snapshot, bool]:
        """The records as committed when the writer reaches this request (it holds the lock and
        has caught up with every process then), written after: no write is half-seen, and the
        writer's lock is never taken twice."""
        records: dict[str, RecordBytes] = await self._writer.submit(lambda batch: batch.committed)
        try:
            return await asyncio.to_thread(self._write, self._path(name), records)
        except OSError as exc:
            raise StoreUnavailable(f"the snapshot could not be written: {exc}; {NOTHING_CHANGED}") from None

    async def listed(self) -> builtins.list[Snapshot]:
        return await asyncio.to_thread(self._listed)

    async def restore(self, name: str) -> None:
        try:
            records = await asyncio.to_thread(datafile.load, self._path(name), None, self._id_field)
        except CorruptDataFile as exc:
            raise StoreUnavailable(f"snapshot {name} cannot be read ({exc.reason}); {NOTHING_CHANGED}") from None
        if records is None:
            raise SnapshotNotFound(name)
        await self._writer.submit(lambda batch: batch.replace_stored(records))

    async def delete(self, name: str) -> None:
        self._writer.writable()
        try:
            await asyncio.to_thread(self._path(name).unlink)
        except FileNotFoundError:
            raise SnapshotNotFound(name) from None
        try:
            await asyncio.to_thread(datafile.sync_directory, self._directory)
        except OSError as exc:  # gone, but not surely for good: answered as done (a retry would 404), said in the log
            logger.error("snapshot %s was deleted but its directory could not be synced: %s", name, exc)

    def _path(self, name: str) -> Path:
        return self._directory / f"{name}.json"

    def _listed(self) -> builtins.list[Snapshot]:
        found = []
        for path in self._directory.glob("*.json"):
            with contextlib.suppress(FileNotFoundError, CorruptDataFile):  # deleted meanwhile; or not ours
                found.append(_described(path, len(datafile.load(path, id_field=self._id_field) or {})))
        return sorted(found, key=lambda snapshot: (snapshot.created_at, snapshot.name))

    @staticmethod
    def _write(target: Path, records: dict[str, RecordBytes]) -> tuple[Snapshot, bool]:
        """The snapshot written, and whether it replaced one of that name."""
        if not target.parent.is_dir():
            target.parent.mkdir(exist_ok=True)
            datafile.sync_directory(target.parent.parent)
        replaced = target.exists()
        with datafile.writing(target) as handle:
            handle.writelines(datafile.render(records))
        return _described(target, len(records)), replaced


def _described(path: Path, records: int) -> Snapshot:
    saved = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).replace(tzinfo=None)
    return Snapshot(path.stem, records, saved.strftime("%Y-%m-%dT%H:%M:%S.%f"))
