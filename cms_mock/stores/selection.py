"""Queries answered from records held in memory: the JSON file's store and ``--in-memory``.

Each record is parsed once, not once per query: a ``Selector`` keeps every record's fields
and search text beside its bytes, keyed by the bytes object, which a store shares between
versions of its records (a write makes new bytes for the record it changes and keeps every
other). A query after a write parses the changed records only, so a filtered, sorted page of
a large collection is quick (``python -m bench`` measures it), at the cost of the parsed fields
in memory (measured there too), made on the first query, never without one.

A query is worked out in a worker thread, in steps whose C parts are short, so that the event
loop keeps answering other requests meanwhile (``python -m bench.stall``), and a sort on many
fields is one sort, by one key per row.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import operator
import struct
import threading
import typing
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from cms_mock.stores import Fields, Listing, Page, Query, folded


class _Row:
    """A record's bytes, its fields' values in the order of ``Fields.names`` (a tuple: far less
    memory than a dictionary), and its searched text."""

    __slots__ = ("body", "text", "values")

    def __init__(self, body: bytes, fields: Fields) -> None:
        self.body = body
        record: dict[str, Any] = orjson.loads(body)
        self.values = tuple(record.get(name) for name in fields.names)
        # The searched fields, folded, joined by a character no field holds (no control
        # characters) and no search text may hold (its pattern): a match never spans two fields.
        self.text = "\x00".join(folded(value) for name in fields.searched if isinstance(value := record.get(name), str))


class Selector:
    """The rows of the latest listing a store gave, and the rows of earlier ones still alive."""

    def __init__(self) -> None:
        self._listing: Listing | None = None
        self._rows: list[_Row] = []
        self._known: dict[int, _Row] = {}
        self._fields = Fields()
        self._lock = threading.Lock()

    async def select(self, listing: Listing, query: Query) -> Page:
        """The page ``query`` selects, worked out in a thread: the event loop goes on answering
        meanwhile, and the work is done in steps (``_STEP``) short enough to let it have the GIL."""
        return await asyncio.to_thread(self._select, listing, query)

    def _select(self, listing: Listing, query: Query) -> Page:
        with self._lock:  # one thread at a time updates the parsed rows
            rows = self._rows_of(listing, query.fields)
        position = {name: index for index, name in enumerate(query.fields.names)}
        for field, value in query.equal:
            at = position[field]
            rows = [row for row in rows if row.values[at] == value]
        if query.text is not None:
            needle = folded(query.text)
            rows = [row for row in rows if needle in row.text]
        total = len(rows)
        end = None if query.limit is None else query.offset + query.limit
        if query.sort:
            rows = _ordered(rows, query, position, end)
        page = Listing(row.body for row in rows[query.offset : end])
        _ = page.digest  # the page's tag (``conditions.list_etag``), hashed here rather than on the loop
        return Page(page, total)

    def _rows_of(self, listing: Listing, fields: Fields) -> list[_Row]:
        if listing is self._listing and fields == self._fields:
            return self._rows
        if fields != self._fields:
            self._known, self._fields = {}, fields
        # A known row holds its bytes alive, so no other object can have their id: a row found
        # by id is the row of these very bytes. Looked up in C; only new bytes are parsed.
        known = self._known
        rows: list[_Row | None] = list(map(known.get, map(id, listing)))
        index = -1
        for _ in range(rows.count(None)):
            index = rows.index(None, index + 1)
            body = listing[index]
            rows[index] = known[id(body)] = _Row(body, fields)
        if len(known) > 2 * len(rows):  # forget the records no version holds any more
            self._known = {id(row.body): row for row in rows if row is not None}
        complete = typing.cast(list[_Row], rows)
        self._listing, self._rows = listing, complete
        return complete


def _ordered(rows: list[_Row], query: Query, position: dict[str, int], end: int | None) -> list[_Row]:
    """The rows in the order of ``query.sort`` (the first ``end`` of them when a page needs no
    more): one sort, by one key per row (equal keys keep creation order), the rows cut into steps
    of ``_STEP`` sorted apart and merged (``heapq.merge`` keeps ties in the order of the steps).
    The key is the first field's value itself when no two rows share it (a time, an email: the
    usual sort), else ``_keys``."""
    values = [row.values for row in rows]
    keys: list[Any] = _distinct(values, query, position)
    reverse = bool(keys) and query.sort[0][1]
    if not keys:
        keys = _keys(values, query, position)
    key = keys.__getitem__
    runs = [sorted(range(start, min(start + _STEP, len(keys))), key=key, reverse=reverse)[:end] for start in range(0, len(keys), _STEP)]
    merged = runs[0] if len(runs) == 1 else heapq.merge(*runs, key=key, reverse=reverse)
    return [rows[index] for index in itertools.islice(merged, end)]


def _distinct(values: list[tuple[Any, ...]], query: Query, position: dict[str, int]) -> list[Any]:
    """The first sort field's values, when every row has one of the field's type and no two are
    equal (so the other fields, and the direction's effect on ties, never count); else none."""
    field = query.sort[0][0]
    kinds = _NUMBERS if field in query.fields.numbers else {str}
    value = operator.itemgetter(position[field])
    column: list[Any] = []
    seen: set[Any] = set()
    for start in range(0, len(values), _STEP):  # what is done in C holds the GIL for one step only
        made = list(map(value, values[start : start + _STEP]))
        if not set(map(type, made)) <= kinds:
            return []
        seen.update(made)
        column += made
        if len(seen) < len(column):
            return []
    return column


def _keys(values: list[tuple[Any, ...]], query: Query, position: dict[str, int]) -> list[bytes]:
    """Each row's key: bytes, a part per sort field (``_parts``) one after the other, compared as
    the parts in turn (no part begins another). A row's parts stop at the field where no other
    row still tied with it has the same part: the rest could not change its place, so a field of
    distinct values (a name, an email) is the only one read, however many follow. Bytes rather
    than tuples: a hundred thousand of them make no work for the garbage collector."""
    keys: list[bytes] = []
    undecided = list(range(len(values)))
    for field, descending in query.sort:
        value = operator.itemgetter(position[field])
        column: list[bytes] = []
        seen: collections.Counter[bytes] = collections.Counter()
        for start in range(0, len(undecided), _STEP):  # what is done in C holds the GIL for one step only
            made = _parts(list(map(value, map(values.__getitem__, undecided[start : start + _STEP]))), field in query.fields.numbers)
            if descending:
                made = list(map(bytes.translate, made, itertools.repeat(_REVERSE)))
            seen.update(made)
            column += made
        if not keys:
            keys = column
        else:
            for index, part in zip(undecided, column, strict=True):
                keys[index] += part
        if len(seen) == len(column):
            break
        undecided = [index for index, part in zip(undecided, column, strict=True) if seen[part] > 1]
    return keys


def _parts(column: list[Any], numeric: bool) -> list[bytes]:
    """A field's values as bytes in the values' ascending order, none of them the beginning of
    another, so that each byte reversed (``_REVERSE``) gives the descending order. Text by code
    point: UTF-8, which keeps that order byte by byte and has no byte above 0xF4, each byte plus
    one, then a 0 (a text before the texts it begins). A number exactly (``_number``). A value of
    another type or none after every value: last ascending, first descending (as PostgreSQL
    orders ``null``)."""
    if numeric:
        return [b"\x01" + _number(value) if type(value) in _NUMBERS else b"\x02" for value in column]
    if set(map(type, column)) <= {str}:
        return list(_texts(column))
    texts = _texts(value for value in column if type(value) is str)
    return [next(texts) if type(value) is str else b"\xff" for value in column]


def _texts(texts: Iterable[str]) -> Iterator[bytes]:
    """``_parts`` of texts, made in C."""
    return map(bytes.__add__, map(bytes.translate, map(str.encode, texts), itertools.repeat(_SHIFT)), itertools.repeat(b"\x00"))


def _number(value: float) -> bytes:
    """An int or a float as 12 bytes in numeric order, exactly: the nearest double (its bits, the
    sign's flipped, or all of them for a negative), then what an int differs from it by (under
    2**11 for any int JSON gives, offset to be positive)."""
    rounded = float(value) + 0.0  # -0.0 is 0.0
    bits = int.from_bytes(struct.pack(">d", rounded))
    bits = bits ^ _ALL_BITS if bits >> 63 else bits | 1 << 63
    difference = value - int(rounded) if type(value) is int else 0
    return bits.to_bytes(8) + (difference + (1 << 31)).to_bytes(4)


_SHIFT = bytes(min(byte + 1, 0xFF) for byte in range(256))
_REVERSE = bytes(0xFF - byte for byte in range(256))
_ALL_BITS = (1 << 64) - 1
_STEP = 4096
"""Rows per step of work done in C (a column's parts, a sort): short enough that the worker
thread doing it gives the GIL back to the event loop's thread after a millisecond or so."""
_NUMBERS = frozenset({int, float})
