"""What a service remembers about its traffic, beside its records: the request journal, the
contract coverage counts and the fault rules (``/__admin/requests``, ``/coverage``, ``/faults``).

Like the records, this is the whole service's, not one process's: every worker of ``--workers
N`` and every instance on one database records into it and reads all of it. ``ServiceState`` is
the seam; ``state.local.LocalState`` keeps it in a directory the workers of one host share (the
JSON file and memory stores), ``state.postgres.PostgresState`` in the database. What a journal
entry is, how a matcher or a fault rule decides, is written once, here.
"""

from __future__ import annotations

import itertools
import os
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

Entry = dict[str, Any]
"""One journal entry, as ``GET /__admin/requests`` lists it (``JournalEntry`` in the spec)."""

Matcher = dict[str, Any]
"""What a journal query asks of an entry: any of ``HEAD_KEYS`` and ``body`` (``Matcher`` in the spec)."""

HEAD_KEYS = ("method", "path", "operationId", "status")
"""The keys of a matcher an entry's head answers, without its request or response."""


@dataclass(frozen=True)
class Page:
    """A journal query's answer: the newest entries that match, oldest first, and how many matched."""

    entries: list[Entry]
    total: int


Counts = dict[tuple[str, int], int]
"""Responses per (operationId, status) since the start or the last reset."""


class ServiceState(Protocol):
    """The journal, the coverage counts and the fault rules of one service."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def record(self, entry: Entry) -> None:
        """Journal ``entry`` (unless the journal is off: then it holds only ``operationId`` and
        ``status``) and count its status for its operation."""

    async def requests(self, matcher: Matcher, limit: int | None) -> Page:
        """Of the journal (at most its size of the most recent entries), those ``matcher``
        describes: the newest ``limit`` of them (every one without a limit, none with 0), and
        how many matched. Each entry is looked at once, newest first, and only the page is
        kept: a read holds the page and one entry, however large the journal."""

    async def clear_requests(self) -> None: ...

    async def counts(self) -> Counts: ...

    async def add_fault(self, rule: dict[str, Any]) -> None: ...

    async def faults(self) -> list[dict[str, Any]]:
        """Every rule, in the order they were added, with how often each was applied."""

    async def delete_fault(self, key: str) -> bool:
        """Whether there was a rule ``key`` to delete."""

    async def clear_faults(self) -> None: ...

    async def take_fault(self, operation: str) -> dict[str, Any] | None:
        """The rule that applies to this request to ``operation``, if one does, counted as
        applied (``times`` used up by one); every rule for ``operation`` counts the request."""

    async def reset(self, keep_coverage: bool = False) -> None:
        """The journal and the fault rules cleared, and the coverage counts unless kept."""


def coverage_key(entry: Entry) -> tuple[str, int] | None:
    """What an entry counts for in coverage: its operation and status; nothing when no
    operation matched, or when the client left before its answer (499: nobody answered it)."""
    if entry["operationId"] is None or entry["status"] == 499:
        return None
    return entry["operationId"], entry["status"]


_PROCESS = os.urandom(8).hex()
_entries = itertools.count()


def entry_id() -> str:
    """Unique across processes and instances: this process's random prefix, and a count
    (cheaper, on every request, than a uuid4)."""
    return f"{_PROCESS}{next(_entries):016x}"


def now() -> str:
    """The journal's clock: UTC to the microsecond, in a form that sorts as it reads."""
    ns = time.time_ns()
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(ns // 1_000_000_000))}.{ns // 1000 % 1_000_000:06d}Z"


def new_rule(given: dict[str, Any]) -> dict[str, Any]:
    """A rule as stored and listed: the given fields, an ``id``, and its counters."""
    rule = {"id": uuid.uuid4().hex[:12], **given, "probability": given.get("probability", 1), "injected": 0}
    if "times" in rule:
        rule["remaining"] = rule["times"]
    return rule


def hits(rule: dict[str, Any], seen: int) -> bool:
    """Whether the ``seen``-th request to the rule's operation is hit: with a ``seed``, the same
    requests every run (the n-th request's draw depends only on the seed and n)."""
    probability: float = rule["probability"]
    if probability >= 1:
        return True
    draw = random.Random(f"{rule['seed']}:{seen}").random() if "seed" in rule else random.random()  # not for security
    return draw < probability


def pick(rules: list[tuple[dict[str, Any], int]]) -> dict[str, Any] | None:
    """Of the rules for one operation, each with its count of requests seen (this one
    included), the first that hits and has uses left, with its counters moved on."""
    for rule, seen in rules:
        if rule.get("remaining", 1) > 0 and hits(rule, seen):
            rule["injected"] += 1
            if "remaining" in rule:
                rule["remaining"] -= 1
            return rule
    return None


def head_matches(head: Entry, matcher: Matcher) -> bool:
    """Whether an entry's head has every one of ``HEAD_KEYS`` the matcher gives (``method`` in
    any case; ``path`` never holds the query). Other keys (``body``, ``limit``) are not asked here."""
    for key in HEAD_KEYS:
        if key in matcher:
            wanted = matcher[key]
            value = head.get(key)
            if key == "method":
                wanted, value = str(wanted).upper(), str(value).upper()
            if value != wanted:
                return False
    return True


class Tally:
    """A journal query answered over entries offered newest first, one at a time: every match
    counted, the first ``limit`` of them kept. What costs (parsing an entry's request, or all
    of it) is done only when the answer needs it: the request when the matcher has a ``body``,
    the entry when it is on the page. The caller offers only entries whose head matches."""

    def __init__(self, matcher: Matcher, limit: int | None) -> None:
        self._body = matcher.get("body")
        self._wants_body = "body" in matcher
        self._limit = limit
        self._kept: list[Entry] = []
        self.total = 0

    def offer(self, request: Callable[[], dict[str, Any]], entry: Callable[[], Entry]) -> None:
        if self._wants_body and not subset(self._body, request().get("body")):
            return
        self.total += 1
        if self._limit is None or len(self._kept) < self._limit:
            self._kept.append(entry())

    def offer_entry(self, entry: Entry) -> None:
        """An entry already parsed whole."""
        self.offer(lambda: entry["request"], lambda: entry)

    def page(self) -> Page:
        return Page(self._kept[::-1], self.total)


def subset(wanted: Any, value: Any) -> bool:
    """Objects match when every key wanted is there and matches; arrays and other values are
    equal (numbers by value, ``1`` and ``1.0``; a boolean is no number). Walked with a stack of
    its own, not the interpreter's: a matcher, or a body, may be nested as deep as a JSON parser
    reads (1,024 levels), past Python's recursion limit."""
    pending: list[tuple[bool, Any, Any]] = [(True, wanted, value)]  # (a subset is enough, wanted, value)
    while pending:
        loose, wanted, value = pending.pop()
        if isinstance(wanted, dict):
            if not isinstance(value, dict) or any(key not in value for key in wanted) or (not loose and len(value) != len(wanted)):
                return False
            pending.extend((loose, inner, value[key]) for key, inner in wanted.items())
        elif isinstance(wanted, list):
            if not isinstance(value, list) or len(value) != len(wanted):
                return False
            pending.extend((False, a, b) for a, b in zip(wanted, value, strict=True))
        elif _number(wanted) and _number(value):
            if wanted != value:
                return False
        elif type(wanted) is not type(value) or wanted != value:
            return False
    return True


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
