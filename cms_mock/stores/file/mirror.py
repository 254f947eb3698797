"""Memory's copy of the data file: the records every reader is served, and catching up with the
file when another process replaced it.

Readers only ever see committed data: the records of the file as it was read, or as this
process wrote it. The event loop only ``stat``s the file to learn whether another process
replaced it; reading and parsing it run in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NamedTuple

from cms_mock.errors import CorruptDataFile
from cms_mock.stores import Listing, datafile
from cms_mock.stores.datafile import RecordBytes, Signature
from cms_mock.stores.records import RecordRules

logger = logging.getLogger(__name__)


class Damage(NamedTuple):
    """The data file as another hand left it, and why it cannot be read."""

    signature: Signature
    reason: str


class Mirror:
    """The committed records, the identity of the file they match, and the next integer id.

    Two ways records become what readers are served: ``serve_loaded`` (read from the file, or
    the samples a new file was made with: ids go on after theirs) and ``serve_written`` (what
    this process's own commit just wrote). ``catch_up`` is a reader's look at the file before it
    reads; ``reread`` is the re-read itself, made only by a holder of ``exclusive``.
    """

    def __init__(self, path: Path, rules: RecordRules) -> None:
        self._path = path
        self._rules = rules
        self.records: dict[str, RecordBytes] = {}
        self.next_int = 1
        self.damage: Damage | None = None
        self._signature: Signature | None = None
        self._listing: Listing | None = None
        self._reading = asyncio.Lock()  # one re-read of the file at a time; a commit holds it from its catch-up to its serve_written

    def listing(self) -> Listing:
        """Every record's JSON, in creation order: one list per version of the records, shared
        by every reader of that version (the records' bytes are shared by every version)."""
        if self._listing is None:
            self._listing = Listing(compact for compact, _ in self.records.values())
        return self._listing

    def serve_loaded(self, records: dict[str, RecordBytes], signature: Signature | None) -> None:
        """Serve records read from elsewhere (the file, the samples): ids go on after theirs."""
        self._serve(records, signature)
        if self._rules.counted_ids:  # never hand out an id again while this process runs
            self.next_int = self._rules.next_id(self.next_int, records)

    def serve_written(self, records: dict[str, RecordBytes], signature: Signature | None, next_int: int) -> None:
        """Serve what this process just wrote, having given out ids up to ``next_int``."""
        self._serve(records, signature)
        self.next_int = max(self.next_int, next_int)

    def _serve(self, records: dict[str, RecordBytes], signature: Signature | None) -> None:
        self.records = records
        self._listing = None
        if signature is not None:
            self._signature = signature

    def read_next_id(self) -> None:
        """Ids go on from the durable high-water mark, so a deleted id is never given out again,
        by any worker, before or after a restart."""
        if not self._rules.counted_ids:
            return
        with contextlib.suppress(FileNotFoundError, ValueError):
            self.next_int = max(self.next_int, int(datafile.ids_path(self._path).read_text()))

    async def catch_up(self) -> None:
        """See every write any process acknowledged before now: a ``stat`` on the loop, and only
        when it shows a new file, one re-read off it that every reader arriving meanwhile waits
        for, then finds done. A commit holds ``exclusive`` until it serves what it wrote, so a
        reader that sees the file our own commit is putting in place waits for the commit rather
        than reading the file."""
        if self._stale(datafile.signature(self._path)):
            async with self._reading:
                await self.reread()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """No re-read but the holder's for the block, which starts caught up with the file."""
        async with self._reading:
            await self.reread()
            yield

    async def reread(self) -> None:
        """Memory becomes what the file holds, when another hand changed it (call holding
        ``exclusive``, or from ``catch_up``)."""
        signature = datafile.signature(self._path)
        if not self._stale(signature):
            return
        assert signature is not None
        found = await asyncio.to_thread(self._read_file, self.records)
        if isinstance(found, CorruptDataFile):
            logger.error("%s; serving the last good state, refusing writes until the file is repaired", found)
            reason = f"data file {self._path} was changed by hand and cannot be read ({found.reason}); repair or restore it"
            self.damage = Damage(signature, reason)
            return
        self.damage = None
        if found is not None:
            self.serve_loaded(found, signature)

    def _stale(self, signature: Signature | None) -> bool:
        """Whether the file whose signature this is holds what memory does not."""
        if signature is None or signature == self._signature:
            return False  # unchanged, or deleted under us: memory holds the last acknowledged state
        return self.damage is None or self.damage.signature != signature  # else still the damaged file: keep serving the last good state

    def _read_file(self, known: dict[str, RecordBytes]) -> dict[str, RecordBytes] | CorruptDataFile | None:
        """The whole file read and parsed (in a thread: ``known`` is never changed in place, only
        replaced, so the loop goes on serving it meanwhile)."""
        logger.debug("%s was changed by another process; re-reading it", self._path)
        try:
            return datafile.load(self._path, known=known, id_field=self._rules.id_field)
        except CorruptDataFile as exc:
            return exc
