"""``PostgresState``: a service's journal, coverage counts and fault rules in the database its
records are in (``DATABASE_URL``), so every instance records into, and reads, the same ones.

The tables are part of the store's schema (``stores.postgres``, version 3). One round trip per
request records it: the journal row and this process's coverage counter, in one statement,
committed without waiting for the disk (``synchronous_commit`` off for that transaction only):
they describe requests, they are not records, so a database crash may lose the last moment of
them, and no request waits for a flush of the write-ahead log to be journaled (with it, every
GET, which changes nothing, would wait for one).
Each process counts in rows of its own (``worker``), so processes never wait on each other's
counter rows; the counts are summed when read. The journal is trimmed to its size every
``_TRIM_EVERY`` entries this process writes, so it holds at most its size plus that many per
process between trims. A fault rule counts the requests to its operation in its row, so a
``seed`` picks the same requests whichever instance they reach.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from cms_mock import exactjson
from cms_mock.state import Counts, Entry, Matcher, Page, Tally, coverage_key, hits
from cms_mock.stores.postgres import PostgresStore

_TRIM_EVERY = 64
_BATCH = 16
"""Journal rows a read holds at once when it judges each."""

_HEAD_SQL = {
    "method": "upper(entry->>'method') = upper(${})",
    "path": "entry->>'path' = ${}",
    "operationId": "entry->>'operationId' = ${}",
    "status": "(entry->>'status')::int = ${}::int",
}
"""A matcher's head keys as conditions on a journal row, each with the number of its argument."""


class PostgresState:
    """A ``ServiceState`` in ``cms_mock_journal``, ``cms_mock_coverage`` and ``cms_mock_faults``,
    over the connections of the service's ``PostgresStore``."""

    def __init__(self, store: PostgresStore, service: str, journal_size: int) -> None:
        self._store = store
        self._service = service
        self._size = journal_size
        self._worker = uuid.uuid4().hex
        self._written = 0

    async def open(self) -> None:
        """Nothing to do: the store made the tables (or answers 503 until it can)."""

    async def close(self) -> None:
        """Nothing to do: the store closes the connections."""

    async def record(self, entry: Entry) -> None:
        journal = self._size > 0
        key = coverage_key(entry)
        async with self._store.connection(change=True) as connection:
            await connection.execute(
                """WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)),
                        journal AS (INSERT INTO cms_mock_journal (service, entry) SELECT $1, $2 WHERE $5),
                        coverage AS (INSERT INTO cms_mock_coverage (service, worker, operation, status, count)
                                    SELECT $1, $6, $3, $4, 1 WHERE $3::text IS NOT NULL
                                    ON CONFLICT (service, worker, operation, status) DO UPDATE SET count = cms_mock_coverage.count + 1)
                   SELECT 1 FROM relaxed""",
                self._service,
                exactjson.dumps(entry),
                key[0] if key else None,
                key[1] if key else None,
                journal,
                self._worker,
            )
            if journal:
                self._written += 1
                if self._written % _TRIM_EVERY == 0:
                    await connection.execute(
                        """DELETE FROM cms_mock_journal WHERE service = $1 AND seq < (
                               SELECT min(seq) FROM (SELECT seq FROM cms_mock_journal WHERE service = $1 ORDER BY seq DESC LIMIT $2) AS newest)""",
                        self._service,
                        self._size,
                    )

    async def requests(self, matcher: Matcher, limit: int | None) -> Page:
        """The head's keys are asked in SQL; without a ``body``, the count and the page are two
        statements. With one, the matching entries stream through a cursor, newest first, a
        few rows at a time, each parsed and judged here (the database's containment is not the
        matcher's: it lets an array match one that holds more)."""
        if not self._size:
            return Page([], 0)
        arguments: list[Any] = [self._service, self._size]
        conditions = ["true"]
        for key, condition in _HEAD_SQL.items():
            if key in matcher:
                arguments.append(matcher[key])
                conditions.append(condition.format(len(arguments)))
        newest = f"""WITH journal AS (SELECT seq, entry FROM cms_mock_journal WHERE service = $1 ORDER BY seq DESC LIMIT $2)
                     SELECT {{}} FROM journal WHERE {" AND ".join(conditions)}"""
        ordered = f"{newest.format('entry')} ORDER BY entry->>'time' DESC, seq DESC"
        async with self._store.connection() as connection:
            if "body" not in matcher:
                total = await connection.fetchval(newest.format("count(*)"), *arguments)
                rows = await connection.fetch(f"{ordered} LIMIT ${len(arguments) + 1}", *arguments, limit) if limit != 0 else []
                return Page([_entry(row[0]) for row in reversed(rows)], total)
            tally = Tally(matcher, limit)
            async with connection.transaction():
                async for row in connection.cursor(ordered, *arguments, prefetch=_BATCH):
                    tally.offer_entry(_entry(row[0]))
            return tally.page()

    async def clear_requests(self) -> None:
        await self._execute("DELETE FROM cms_mock_journal WHERE service = $1")

    async def counts(self) -> Counts:
        async with self._store.connection() as connection:
            rows = await connection.fetch(
                "SELECT operation, status, sum(count)::bigint FROM cms_mock_coverage WHERE service = $1 GROUP BY operation, status", self._service
            )
        return {(row[0], row[1]): row[2] for row in rows}

    async def add_fault(self, rule: dict[str, Any]) -> None:
        fixed = {key: value for key, value in rule.items() if key not in ("injected", "remaining")}
        async with self._store.connection(change=True) as connection:
            await connection.execute(
                "INSERT INTO cms_mock_faults (service, id, operation, rule, remaining) VALUES ($1, $2, $3, $4, $5)",
                self._service,
                rule["id"],
                rule["operationId"],
                orjson.dumps(fixed),
                rule.get("remaining"),
            )

    async def faults(self) -> list[dict[str, Any]]:
        async with self._store.connection() as connection:
            rows = await connection.fetch("SELECT rule, injected, remaining FROM cms_mock_faults WHERE service = $1 ORDER BY position", self._service)
        return [_listed(row) for row in rows]

    async def delete_fault(self, key: str) -> bool:
        async with self._store.connection(change=True) as connection:
            status = await connection.execute("DELETE FROM cms_mock_faults WHERE service = $1 AND id = $2", self._service, key)
        return bool(status != "DELETE 0")

    async def clear_faults(self) -> None:
        await self._execute("DELETE FROM cms_mock_faults WHERE service = $1")

    async def take_fault(self, operation: str) -> dict[str, Any] | None:
        """One statement when no rule is for ``operation`` (the common case); a second to claim
        a use of the rule that hits, which fails if another request took the last one first."""
        async with self._store.connection(change=True) as connection:
            rows = await connection.fetch(
                """UPDATE cms_mock_faults SET seen = seen + 1 WHERE service = $1 AND operation = $2 AND (remaining IS NULL OR remaining > 0)
                   RETURNING id, position, rule, seen""",
                self._service,
                operation,
            )
            for row in sorted(rows, key=lambda row: row["position"]):
                if hits(orjson.loads(row["rule"]), row["seen"]):
                    claimed = await connection.fetchrow(
                        """UPDATE cms_mock_faults SET injected = injected + 1, remaining = remaining - 1
                           WHERE service = $1 AND id = $2 AND (remaining IS NULL OR remaining > 0) RETURNING rule, injected, remaining""",
                        self._service,
                        row["id"],
                    )
                    if claimed is not None:
                        return _listed(claimed)
        return None

    async def reset(self, keep_coverage: bool = False) -> None:
        coverage = "" if keep_coverage else ", coverage AS (DELETE FROM cms_mock_coverage WHERE service = $1)"
        await self._execute(f"WITH journal AS (DELETE FROM cms_mock_journal WHERE service = $1){coverage} DELETE FROM cms_mock_faults WHERE service = $1")

    async def _execute(self, statement: str) -> None:
        async with self._store.connection(change=True) as connection:
            await connection.execute(statement, self._service)


def _entry(raw: bytes) -> Entry:
    return dict(exactjson.loads(raw))


def _listed(row: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {**orjson.loads(row["rule"]), "injected": row["injected"]}
    if row["remaining"] is not None:
        rule["remaining"] = row["remaining"]
    return rule
