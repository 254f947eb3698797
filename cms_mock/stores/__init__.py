"""The one seam between the API and wherever records live.

Handlers, the runtime and the command line use a ``RecordStore``; backends implement it:
``stores.file.FileStore`` (the seed's JSON file, the default), ``stores.memory.MemoryStore``
(``--in-memory``) and ``stores.postgres.PostgresStore`` (``DATABASE_URL``). What a record is and
how it changes is the same for all of them (``records.RecordRules``). Records cross the seam as
compact JSON bytes, served as they are, never parsed and encoded again.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import hashlib
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Protocol

import orjson


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A named copy of every record, kept as durably as the records themselves."""

    name: str
    records: int
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Listing(builtins.list[bytes]):
    """Every record's JSON in creation order, held in memory, with the array's size and, for a
    small array, its whole body: computed once per version of the records, not once per request."""

    @functools.cached_property
    def size(self) -> int:
        return sum(map(len, self)) + max(len(self) - 1, 0) + 2

    @functools.cached_property
    def body(self) -> bytes:
        return b"[" + b",".join(self) + b"]"

    @functools.cached_property
    def digest(self) -> str:
        """The MD5 of the array's body, hashed part by part: a large array is never joined."""
        digest = hashlib.md5(b"[", usedforsecurity=False)
        for index, part in enumerate(self):
            if index:
                digest.update(b",")
            digest.update(part)
        digest.update(b"]")
        return digest.hexdigest()

    async def batches(self) -> AsyncIterator[builtins.list[bytes]]:
        yield self


class Streamed:
    """Records read in batches while the answer is sent: its size is not known in advance."""

    def __init__(self, batches: AsyncIterator[builtins.list[bytes]]) -> None:
        self._batches = batches

    def batches(self) -> AsyncIterator[builtins.list[bytes]]:
        return self._batches


Records = Listing | Streamed


@dataclasses.dataclass(frozen=True)
class Fields:
    """A service's record fields, as lists are queried by them (``collection.Collection`` reads
    them from the spec); what a store may prepare (PostgreSQL: a column of each, some indexed)."""

    names: tuple[str, ...] = ()
    numbers: frozenset[str] = frozenset()
    """Fields whose values are numbers (compared as numbers, not as text)."""
    indexed: tuple[str, ...] = ()
    """The fields lists are most often filtered or sorted by."""
    searched: tuple[str, ...] = ()
    """The fields ``q`` searches."""


@dataclasses.dataclass(frozen=True)
class Query:
    """Which records a list answers, in which order, and which part of them (``collection.Collection``
    makes one from a request's query parameters)."""

    equal: tuple[tuple[str, Any], ...] = ()
    """(field, value): records whose field is exactly the value."""
    text: str | None = None
    """Records where one of the searched fields holds it, whatever the letter case."""
    sort: tuple[tuple[str, bool], ...] = ()
    """(field, descending), the first deciding; ties keep creation order. A record without the
    field (or with ``null``) sorts after every value: last ascending, first descending."""
    fields: Fields = Fields()
    limit: int | None = None
    offset: int = 0


def folded(text: str) -> str:
    """Text as ``q`` compares it, whatever the letter case: lower case, and a final sigma (which
    lower case writes ``ς``, U+03C2, at the end of a word only) as any other (U+03C3), so
    ``ΑΣ`` is found in ``ΚΑΣΑ``."""
    return text.lower().replace("\u03c2", "\u03c3")


@dataclasses.dataclass(frozen=True)
class Page:
    """The records a ``Query`` selects, and how many matched before ``offset`` and ``limit``."""

    records: Records
    total: int


Check = Callable[[bytes | None], None]
"""A condition on a record's current JSON (None: there is none) that raises when it fails."""


def keyed_object(listing: Listing, id_field: str) -> bytes:
    """A ``Listing`` (one moment's records) as the data file's object: ``{"<id>": record, ...}``."""
    parts = [b"{"]
    for body in listing:
        key = orjson.loads(body)[id_field]
        parts.append((b"," if len(parts) > 1 else b"") + orjson.dumps(str(key)) + b":" + body)
    parts.append(b"}")
    return b"".join(parts)


class RecordStore(Protocol):
    """Records keyed by id (a string: the data file's member name, whatever the id's JSON type).

    Every write is durable before it returns; every read sees every write acknowledged before
    it began, by this process or any other sharing the store. Errors are ``errors.ApiError``s:
    ``RecordNotFound`` (404) and ``StoreUnavailable`` (503, saying whether anything changed).
    """

    async def open(self, create: bool = True) -> None:
        """Make the store ready: create it with the samples if it was never initialised.
        Raises ``errors.StoreRefused`` when it exists but must not be used, and with
        ``create=False`` (reading it out) also when there is none: then nothing is changed."""

    async def close(self) -> None:
        """Finish what was acknowledged; refuse every call from now on."""

    async def list(self) -> Records:
        """Every record, in creation order."""

    async def find(self, query: Query) -> Page:
        """The records ``query`` selects, sorted, and the part of them it asks for, with the
        number of matches counted in the same moment."""

    async def get(self, key: str) -> bytes: ...

    async def keyed(self) -> bytes:
        """Every record as one JSON object keyed by id, in creation order, as of one moment
        (the data file's object, ``GET /__admin/records``)."""

    async def count(self) -> int: ...

    async def create(self, fields: dict[str, Any]) -> bytes:
        """A new record from declared ``fields``, with an id and timestamps the store makes."""

    async def update(self, key: str, changes: dict[str, Any], check: Check | None = None) -> bytes:
        """``check`` is given the record's current JSON (None: no record) in the same atomic
        step as the change, and raises to refuse it (``If-Match``)."""

    async def delete(self, key: str, check: Check | None = None) -> None: ...

    async def replace_all(self, records: Iterable[dict[str, Any]]) -> None:
        """Every record at once, in one durable change: as given, and an id or timestamp left
        out made as on create (``RecordRules.complete``); integer ids given out later go on
        after the highest one ever used."""

    async def save_snapshot(self, name: str) -> tuple[Snapshot, bool]:
        """Every record, as they are now, saved as ``name``; whether one of that name was replaced."""

    async def snapshots(self) -> builtins.list[Snapshot]:
        """Every snapshot, oldest first."""

    async def restore_snapshot(self, name: str) -> None:
        """Every record becomes the snapshot's, in one durable change (``SnapshotNotFound``)."""

    async def delete_snapshot(self, name: str) -> None:
        """The snapshot is gone, durably (``SnapshotNotFound``)."""

    async def problem(self) -> str | None:
        """Why the store cannot work now (the present, not the last failure), or None."""
