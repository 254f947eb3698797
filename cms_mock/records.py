"""The rules every store keeps, whatever holds the records: ids, timestamps, not-found.

A backend decides where records live; what a record is, how it is born and how it changes is
decided here once, so the JSON file, memory and PostgreSQL cannot drift apart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Literal

import orjson

from cms_mock.errors import RecordNotFound

IdPolicy = Literal["uuid4", "int"]

MADE = ("id", "created_at", "updated_at")
"""The fields a store makes; every other field comes from the client."""

_LARGEST_GIVEN = 2**53 - 1
"""The largest integer id a record given whole (fixtures, an import) may have: exact in every
JSON client (a JavaScript number), and far enough below int64's largest (the spec's ``format``,
what PostgreSQL's sequence holds) that ids made after it never run out: a given
``2**63 - 1`` once made the next created profile ``2**63``, outside every int64 client."""

STRING_ID = r"[^/\x00-\x1f\x7f]{1,256}"
"""A string id's text, one path segment (the same in ECMA-262 and Python). ``.`` and ``..``
match it but clients that normalise paths cannot send them (documented)."""

STRING_ID_RULE = "must be 1 to 256 characters, none of them '/' or a control character"
"""What ``STRING_ID`` says, in words: an import's problem and the 422 of an id in a body."""


def timestamp(after: str | None = None) -> str:
    """UTC now as the seed writes it, strictly later than ``after`` so updates always move it
    (even when another instance's clock is ahead of ours)."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if after is not None:
        with contextlib.suppress(ValueError, OverflowError):  # fixtures may hold any text of the pattern (2024-02-30, 9999-12-31...)
            now = max(now, dt.datetime.fromisoformat(after) + dt.timedelta(microseconds=1))
    return now.strftime("%Y-%m-%dT%H:%M:%S.%f")


def dump(record: dict[str, Any]) -> bytes:
    """A record's compact JSON, as every answer carries it.

    A copy: the bytes orjson returns keep its whole output buffer (about 4 KiB for a 330-byte
    record, 400 MB for 100,000 records); a copy is the size of its content.
    """
    return bytes(memoryview(orjson.dumps(record)))


@dataclasses.dataclass(frozen=True)
class RecordRules:
    """One service's records.

    :param ids: ``"uuid4"``: the server makes a UUID string; ``"int"``: 1, 2, 3, ... counted by
        the store, and never given out twice, not even after a delete or a restart.
    :param samples: the records a store that was never initialised starts with.
    :param noun: what the 404 calls a record (``Customer with ID 7 not found``).
    """

    ids: IdPolicy
    samples: Callable[[], list[dict[str, Any]]]
    noun: str = "Customer"

    @property
    def counted_ids(self) -> bool:
        """Whether the store, not this module, gives out ids (it alone knows the last one)."""
        return self.ids == "int"

    def not_found(self, key: str) -> RecordNotFound:
        return RecordNotFound(key, f"{self.noun} with ID {key} not found")

    def problems(self, record: dict[str, Any]) -> list[str]:
        """What a record given whole (an import, fixtures) must be beyond its schema: an id (when
        given) of this service's kind that a path can reach. Each problem as ``field: what is wrong``."""
        found = []
        key = record.get("id")
        if "id" not in record:
            pass  # made as on create, or required by the schema
        elif self.counted_ids:
            if isinstance(key, bool) or not isinstance(key, int) or not 1 <= key <= _LARGEST_GIVEN:
                found.append(f"id: must be an integer from 1 to {_LARGEST_GIVEN}")
        elif not isinstance(key, str) or not re.fullmatch(STRING_ID, key):
            found.append(f"id: {STRING_ID_RULE}")
        return found

    def complete(self, records: Iterable[dict[str, Any]], counted: Callable[[], int]) -> list[dict[str, Any]]:
        """Records given to ``PUT /__admin/records`` with what was left out made as on create:
        an id (``counted()`` gives the next counted one), and timestamps of now. Fields in the
        order a created record has them: id, the rest, then the timestamps."""
        now = timestamp()
        made = []
        for record in records:
            new_id = record["id"] if "id" in record else counted() if self.counted_ids else str(uuid.uuid4())
            created = record.get("created_at", now)
            fields = {name: value for name, value in record.items() if name not in MADE}
            made.append({"id": new_id, **fields, "created_at": created, "updated_at": record.get("updated_at", max(created, now))})
        return made

    def id_schema(self) -> dict[str, Any]:
        """The JSON Schema of an id given whole (fixtures): what ``problems`` checks, for clients."""
        if self.counted_ids:
            return {"type": "integer", "format": "int64", "minimum": 1, "maximum": _LARGEST_GIVEN}
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
        now = timestamp()
        return {"id": new_id, **fields, "created_at": now, "updated_at": now}

    def update(self, record: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        """``record`` with ``changes`` applied and ``updated_at`` moved forward."""
        return {**record, **changes, "updated_at": timestamp(after=record["updated_at"])}
