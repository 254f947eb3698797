"""The rules every store keeps, whatever holds the records: ids, timestamps, not-found.

A backend decides where records live; what a record is, how it is born and how it changes is
decided here once, so the JSON file, memory and PostgreSQL cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Literal

import orjson

from cms_mock.errors import NOTHING_CHANGED, ApiError, FieldError, InvalidBody, RecordNotFound

IdPolicy = Literal["uuid4", "int"]

TIMES = ("created_at", "updated_at")
"""The times a store stamps a record with, where its schema declares them."""

LARGEST_ID = 2**53 - 1
"""The largest integer id a record may have, given whole (fixtures, an import) or made by a
create: exact in every JSON client (a JavaScript number), and one limit for both, so whatever
the service holds, its own export imports. Past it a create is refused, never made."""

_IDS_GIVEN = f"every id from 1 to {LARGEST_ID} (2^53 - 1, the largest exact in every JSON client) has been given out"

_LAST = dt.datetime.max
"""The last instant a timestamp can name (9999-12-31T23:59:59.999999): an ``updated_at`` there
could never move forward again, so no record may be given one."""

_TICK = dt.timedelta(microseconds=1)

STRING_ID = r"[^/\x00-\x1f\x7f]{1,256}"
"""A string id's text, one path segment (the same in ECMA-262 and Python). ``.`` and ``..``
match it but clients that normalise paths cannot send them (documented)."""

STRING_ID_RULE = "must be 1 to 256 characters, none of them '/' or a control character"
"""What ``STRING_ID`` says, in words: an import's problem and the 422 of an id in a body."""


def timestamp() -> str:
    """UTC now as the seed writes it."""
    return _written(_now())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _written(moment: dt.datetime) -> str:
    """As the seed writes a time (``isoformat`` pads every year to four digits; ``strftime`` does not)."""
    return moment.isoformat(timespec="microseconds")


def _time_problems(record: dict[str, Any], zone: str) -> list[str]:
    """What is wrong with a record's given timestamps: a text of the pattern that names no
    instant (2026-02-30, hour 25, year 0), the last instant there is, or ``updated_at`` before
    ``created_at``. A value that is not the seed's writing is the schema's to refuse."""
    found = []
    moments: dict[str, dt.datetime] = {}
    for field in ("created_at", "updated_at"):
        value = record.get(field)
        if not isinstance(value, str):
            continue
        try:
            moment = dt.datetime.fromisoformat(value.removesuffix(zone))
        except ValueError as exc:
            found.append(f"{field}: is not a real time: {exc}")
            continue
        if _written(moment) + zone != value:
            continue
        if moment == _LAST:
            found.append(f"{field}: is the last time there is ({value}): updated_at must have room to move forward")
        moments[field] = moment
    if len(moments) == 2 and moments["updated_at"] < moments["created_at"]:
        found.append(f"updated_at: must not be before created_at ({record['created_at']})")
    return found


def dump(record: dict[str, Any]) -> bytes:
    """A record's compact JSON, as every answer carries it.

    A copy: the bytes orjson returns keep its whole output buffer, far larger than a record;
    a copy is the size of its content.
    """
    return bytes(memoryview(orjson.dumps(record)))


@dataclasses.dataclass(frozen=True)
class RecordRules:
    """One service's records.

    :param ids: ``"uuid4"``: the server makes a UUID string; ``"int"``: 1, 2, 3, ... counted by
        the store, and never given out twice, not even after a delete or a restart.
    :param samples: the records a store that was never initialised starts with.
    :param noun: what the 404 calls a record (``Customer with ID 7 not found``).
    :param stamped: whether records carry ``created_at`` and ``updated_at``, made by the store
        (a spec's record that declares neither gets neither).
    """

    ids: IdPolicy
    samples: Callable[[], list[dict[str, Any]]]
    noun: str = "Customer"
    stamped: bool = True
    id_field: str = "id"
    """The field that holds a record's id (``petId``, ``eventId``), which keys it in the store."""
    zone: str = ""
    """What follows a timestamp: nothing, as the seeds write them (UTC understood), or ``Z``
    for a spec whose timestamps are ``format: date-time`` (RFC 3339 wants the offset)."""

    @property
    def made(self) -> tuple[str, ...]:
        """The fields a store makes; every other field comes from the client."""
        return (self.id_field, *TIMES) if self.stamped else (self.id_field,)

    def key(self, record: dict[str, Any]) -> str:
        """The record's key in the store: its id as text, whatever the id's JSON type."""
        return str(record[self.id_field])

    @property
    def counted_ids(self) -> bool:
        """Whether the store, not this module, gives out ids (it alone knows the last one)."""
        return self.ids == "int"

    def not_found(self, key: str) -> RecordNotFound:
        return RecordNotFound(key, f"{self.noun} with ID {key} not found")

    def no_id_left(self) -> ApiError:
        """A create past ``LARGEST_ID``: refused, nothing stored (422: the request is fine, the
        service cannot make what it asks)."""
        return ApiError(f"No id is left to give: {_IDS_GIVEN}; nothing was stored", status=422)

    def problems(self, record: dict[str, Any]) -> list[str]:
        """What a record given whole (an import, fixtures) must be beyond its schema: an id (when
        given) of this service's kind that a path can reach, and timestamps that are real times,
        in order, with room for ``updated_at`` to move forward. Each problem as ``field: what is wrong``."""
        found = []
        key = record.get(self.id_field)
        if self.id_field not in record:
            pass  # made as on create, or required by the schema
        elif self.counted_ids:
            if isinstance(key, bool) or not isinstance(key, int) or not 1 <= key <= LARGEST_ID:
                found.append(f"{self.id_field}: must be an integer from 1 to {LARGEST_ID}")
        elif not isinstance(key, str) or not re.fullmatch(STRING_ID, key):
            found.append(f"{self.id_field}: {STRING_ID_RULE}")
        return found + _time_problems(record, self.zone) if self.stamped else found

    def complete(self, records: Iterable[dict[str, Any]], counted: Callable[[], int]) -> list[dict[str, Any]]:
        """Records given to ``PUT /__admin/records`` with what was left out made as on create:
        an id (``counted()`` gives the next counted one; past ``LARGEST_ID`` the whole is
        refused), and timestamps of now, in order with a given one. Fields in the order a
        created record has them: id, the rest, then the timestamps."""
        now = timestamp() + self.zone
        made = []
        for index, record in enumerate(records):
            new_id = record[self.id_field] if self.id_field in record else counted() if self.counted_ids else str(uuid.uuid4())
            if isinstance(new_id, int) and new_id > LARGEST_ID:
                raise InvalidBody([FieldError(("body", index, self.id_field), f"no id is left to give: {_IDS_GIVEN}", "value_error.id")])
            fields = {name: value for name, value in record.items() if name not in self.made}
            if not self.stamped:
                made.append({self.id_field: new_id, **fields})
                continue
            created = record.get("created_at", min(now, record.get("updated_at", now)))
            made.append({self.id_field: new_id, **fields, "created_at": created, "updated_at": record.get("updated_at", max(created, now))})
        return made

    def completed(self, records: Iterable[dict[str, Any]], following: int) -> tuple[list[dict[str, Any]], int]:
        """``complete``, with counted ids going on after every given one and never below
        ``following``; and the next id after them all. Nothing is changed before it returns, so
        a store that assigns the answer changes nothing when it raises."""
        given = list(records)
        if self.counted_ids:
            following = self.next_id(following, (self.key(record) for record in given if self.id_field in record))
        ids = itertools.count(following)
        made = self.complete(given, ids.__next__)
        return made, next(ids)

    def id_schema(self) -> dict[str, Any]:
        """The JSON Schema of an id given whole (fixtures): what ``problems`` checks, for clients."""
        if self.counted_ids:
            return {"type": "integer", "format": "int64", "minimum": 1, "maximum": LARGEST_ID}
        return {"type": "string", "pattern": f"^{STRING_ID}$", "x-error": {"msg": STRING_ID_RULE, "type": "value_error.str.regex"}}

    def next_id(self, following: int, keys: Iterable[str]) -> int:
        """The next counted id once records with ``keys`` are in: after every one of them, and
        never below ``following`` (ids given out before stay given out)."""
        return max([following, *(int(key) + 1 for key in keys)])

    def create(self, fields: dict[str, Any], counted: int | None = None) -> dict[str, Any]:
        """A new record: its id first, then the fields in the schema's order, then timestamps."""
        new_id: object = counted if self.counted_ids else str(uuid.uuid4())
        if new_id is None:
            raise ValueError("a store with counted ids must give the next id")
        if isinstance(new_id, int) and new_id > LARGEST_ID:
            raise self.no_id_left()
        fields = {name: value for name, value in fields.items() if name not in self.made}  # the server's to make, whatever was sent
        if not self.stamped:
            return {self.id_field: new_id, **fields}
        now = timestamp() + self.zone
        return {self.id_field: new_id, **fields, "created_at": now, "updated_at": now}

    def update(self, record: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        """``record`` with ``changes`` applied and ``updated_at`` moved forward: to the later of
        now and a microsecond after the last one (another instance's clock may be ahead of ours,
        and two changes may fall in one microsecond)."""
        changes = {name: value for name, value in changes.items() if name not in self.made}  # the server's to keep
        if not self.stamped:
            return {**record, **changes}
        now = _now()
        try:
            moved = max(now, dt.datetime.fromisoformat(record["updated_at"].removesuffix(self.zone)) + _TICK)
        except OverflowError:  # the last instant there is: no change can come after it
            last = f"its updated_at is the last time there is, and every change moves it forward; {NOTHING_CHANGED}"
            raise InvalidBody([FieldError(("body",), f"{self.noun} with ID {self.key(record)} cannot change: {last}", "value_error.updated_at")]) from None
        except (KeyError, TypeError, ValueError):  # a data file edited by hand may hold what an import refuses: no time to follow
            moved = now
        return {**record, **changes, "updated_at": _written(moved) + self.zone}
