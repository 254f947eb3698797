"""``MemoryState``: the journal, coverage counts and fault rules of one process, for
``--in-memory`` (one worker, nothing written anywhere, like its records)."""

from __future__ import annotations

import collections
import copy
from typing import Any

from cms_mock.state import Counts, Entry, Matcher, Page, Tally, coverage_key, head_matches, pick


class MemoryState:
    """A ``ServiceState`` in a bounded deque, a counter and a list."""

    def __init__(self, journal_size: int) -> None:
        self._journal: collections.deque[Entry] = collections.deque(maxlen=journal_size)
        self._counts: collections.Counter[tuple[str, int]] = collections.Counter()
        self._rules: list[dict[str, Any]] = []
        self._seen: dict[str, int] = {}

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def record(self, entry: Entry) -> None:
        key = coverage_key(entry)
        if key is not None:
            self._counts[key] += 1
        if self._journal.maxlen:
            self._journal.append(entry)

    async def requests(self, matcher: Matcher, limit: int | None) -> Page:
        tally = Tally(matcher, limit)
        for entry in sorted(self._journal, key=lambda entry: entry["time"], reverse=True):
            if head_matches(entry, matcher):
                tally.offer_entry(entry)
        return tally.page()

    async def clear_requests(self) -> None:
        self._journal.clear()

    async def counts(self) -> Counts:
        return dict(self._counts)

    async def add_fault(self, rule: dict[str, Any]) -> None:
        self._rules.append(copy.deepcopy(rule))
        self._seen[rule["id"]] = 0

    async def faults(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self._rules)

    async def delete_fault(self, key: str) -> bool:
        kept = [rule for rule in self._rules if rule["id"] != key]
        found = len(kept) < len(self._rules)
        self._rules = kept
        return found

    async def clear_faults(self) -> None:
        self._rules = []
        self._seen.clear()

    async def take_fault(self, operation: str) -> dict[str, Any] | None:
        mine = [rule for rule in self._rules if rule["operationId"] == operation and rule.get("remaining", 1) > 0]
        for rule in mine:
            self._seen[rule["id"]] += 1
        chosen = pick([(rule, self._seen[rule["id"]]) for rule in mine])
        return copy.deepcopy(chosen) if chosen else None

    async def reset(self, keep_coverage: bool = False) -> None:
        self._journal.clear()
        await self.clear_faults()
        if not keep_coverage:
            self._counts.clear()
