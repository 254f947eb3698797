"""``PostgresStore``: a service's records read and written, a row each, in its own table."""

from __future__ import annotations

import builtins
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import asyncpg
import orjson

from cms_mock.errors import SnapshotNotFound, StoreUnavailable
from cms_mock.stores import Check, Fields, Listing, Page, Query, Records, Snapshot, Streamed
from cms_mock.stores.postgres import schema
from cms_mock.stores.postgres.connections import Database
from cms_mock.stores.postgres.sql import Table
from cms_mock.stores.records import LARGEST_ID, RecordRules, dump, timestamp

logger = logging.getLogger(__name__)

_BATCH = 1000
"""Records per query of a list: the most one request holds in memory at a time."""


class PostgresStore:
    """Records keyed by id in one table of a PostgreSQL database (a ``RecordStore``)."""

    def __init__(self, url: str, table: str, rules: RecordRules, *, timeout: float = 5.0, fields: Fields | None = None) -> None:
        """``fields``: the record's fields, each given a column a query reads (see ``schema``)."""
        self._table = Table(table, fields or Fields())
        self._rules = rules
        self._database = Database(url, timeout, prepare=self._prepare, check=self._check)

    # -- life cycle ------------------------------------------------------------------------

    async def open(self, create: bool = True) -> None:
        """Create the pool and the schema. A database that is down now is waited for by each
        request, not by the start (instances may start before their database); one that can
        never work (``failures.CONFIGURATION``, a newer schema) refuses the start. ``create=False``
        changes nothing: it refuses a database this service never initialised."""
        await self._database.open(create)

    async def close(self) -> None:
        await self._database.close()

    def connection(self, change: bool = False) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        """A pooled connection to a database with this service's table in it, for one call that
        ends within ``timeout`` seconds, or answers 503 saying what is known of the change
        (``state.postgres`` shares them)."""
        return self._database.connection(change)

    async def _prepare(self, connection: asyncpg.Connection) -> None:
        """The schema at ``schema.SCHEMA_VERSION`` and this service's table, with the samples the
        first time only."""
        await schema.migrate(connection)
        if await schema.made(connection, self._table):
            await self._fill(connection, self._rules.samples())
            logger.info("created table %s with the sample records", self._table.name)

    async def _check(self, connection: asyncpg.Connection) -> None:
        await schema.found(connection, self._table)

    # -- reads -----------------------------------------------------------------------------

    async def list(self) -> Records:
        """The first batch now (so a database that is down is a 503, not a broken answer);
        the rest, if any, batch by batch while the answer is sent, each batch its own query
        (``seq`` after the last one sent): a slow reader holds no connection and no snapshot."""
        first = await self._page(0)
        if len(first) < _BATCH:
            return Listing(body for _, body in first)

        async def batches() -> AsyncIterator[builtins.list[bytes]]:
            page = first
            while page:
                yield [body for _, body in page]
                page = await self._page(page[-1][0]) if len(page) == _BATCH else []

        return Streamed(batches())

    async def _page(self, after: int) -> builtins.list[tuple[int, bytes]]:
        async with self.connection() as connection:
            rows = await connection.fetch(f"SELECT seq, body FROM {self._table.quoted} WHERE seq > $1 ORDER BY seq LIMIT {_BATCH}", after)
        return [(row[0], row[1]) for row in rows]

    async def find(self, query: Query) -> Page:
        """The count and the first records in one snapshot (a read-only, repeatable-read
        transaction): with a ``limit``, the count and the page; without, the matches' ``seq`` in
        their order (their count is its length) and the first batch of them. Records past the
        first batch are read in batches as the answer is sent, as ``list`` does."""
        where, arguments = self._table.where(query)
        order = self._table.order(query)
        async with self.connection() as connection, connection.transaction(isolation="repeatable_read", readonly=True):
            if query.limit is None:
                seqs: builtins.list[int] = await connection.fetchval(
                    f"SELECT coalesce(array_agg(seq ORDER BY {order}), '{{}}') FROM {self._table.quoted} WHERE {where}", *arguments
                )
                chosen = seqs[query.offset :]
                first = await self._bodies(connection, chosen[:_BATCH])
            else:
                total: int = await connection.fetchval(f"SELECT count(*) FROM {self._table.quoted} WHERE {where}", *arguments)
                rows = []
                if query.offset < total:
                    page = f"SELECT body FROM {self._table.quoted} WHERE {where} ORDER BY {order} LIMIT {query.limit:d} OFFSET {query.offset:d}"
                    rows = await connection.fetch(page, *arguments)
                return Page(Listing(row[0] for row in rows), total)
        if len(chosen) <= _BATCH:
            return Page(Listing(first), len(seqs))

        async def batches() -> AsyncIterator[builtins.list[bytes]]:
            yield first
            for start in range(_BATCH, len(chosen), _BATCH):
                async with self.connection() as connection:  # released before the batch is sent: a slow reader holds none
                    part = await self._bodies(connection, chosen[start : start + _BATCH])
                yield part

        return Page(Streamed(batches()), len(seqs))

    async def _bodies(self, connection: asyncpg.Connection, seqs: builtins.list[int]) -> builtins.list[bytes]:
        """The records of ``seqs``, in that order (one deleted since is left out)."""
        rows = await connection.fetch(f"SELECT seq, body FROM {self._table.quoted} WHERE seq = ANY($1::bigint[])", seqs)
        bodies = {row[0]: row[1] for row in rows}
        return [bodies[seq] for seq in seqs if seq in bodies]

    async def get(self, key: str) -> bytes:
        self._storable(key)
        async with self.connection() as connection:
            body: bytes | None = await connection.fetchval(f"SELECT body FROM {self._table.quoted} WHERE id = $1", key)
        if body is None:
            raise self._rules.not_found(key)
        return body

    async def keyed(self) -> bytes:
        """One statement, so one moment (the list's batches are each their own)."""
        async with self.connection() as connection:
            body: bytes = await connection.fetchval(f"SELECT coalesce(json_object_agg(id, body ORDER BY seq), '{{}}') FROM {self._table.quoted}")
        return body

    async def count(self) -> int:
        async with self.connection() as connection:
            total: int = await connection.fetchval(f"SELECT count(*) FROM {self._table.quoted}")
        return total

    async def problem(self) -> str | None:
        try:
            async with self.connection() as connection:
                await connection.fetchval("SELECT 1")
        except StoreUnavailable as exc:
            return exc.reason
        return None

    # -- writes ----------------------------------------------------------------------------

    async def create(self, fields: dict[str, Any]) -> bytes:
        async with self.connection(change=True) as connection:
            if not self._rules.counted_ids:
                record = self._rules.create(fields)
                body = dump(record)
                await connection.execute(f"INSERT INTO {self._table.quoted} (id, body) VALUES ($1, $2)", self._rules.key(record), body)
                return body
            # The id comes from the sequence inside the statement: the record is written around it.
            template = dump(self._rules.create(fields, counted=0))
            opening = b"{" + orjson.dumps(self._rules.id_field) + b":"  # the record's first member: its id
            assert template.startswith(opening + b"0")
            made: bytes | None = await connection.fetchval(
                f"""INSERT INTO {self._table.quoted} (id, body) SELECT next::text, ($2 || next || $1)::json
                    FROM (SELECT nextval('{self._table.ids}') AS next) AS id WHERE next <= {LARGEST_ID} RETURNING body""",
                template[len(opening) + 1 :].decode(),
                opening.decode(),
            )
            if made is None:  # past the largest id: nothing inserted
                raise self._rules.no_id_left()
            return made

    async def update(self, key: str, changes: dict[str, Any], check: Check | None = None) -> bytes:
        """Read, change, and write only if the record is still what was read (compare and set):
        two statements and no transaction to hold open; a concurrent change makes it read again,
        so no update is lost and ``updated_at`` still only moves forward. ``check`` judges what
        was read: the record it passed is the one changed."""
        self._storable(key, check)
        async with self.connection(change=True) as connection:
            while True:
                current: bytes | None = await connection.fetchval(f"SELECT body FROM {self._table.quoted} WHERE id = $1", key)
                if check is not None:
                    check(current)
                if current is None:
                    raise self._rules.not_found(key)
                body = dump(self._rules.update(orjson.loads(current), changes))
                status = await connection.execute(f"UPDATE {self._table.quoted} SET body = $2 WHERE id = $1 AND body::text = $3", key, body, current.decode())
                if status == "UPDATE 1":
                    return body

    async def delete(self, key: str, check: Check | None = None) -> None:
        self._storable(key, check)
        async with self.connection(change=True) as connection:
            if check is None:
                status = await connection.execute(f"DELETE FROM {self._table.quoted} WHERE id = $1", key)
            else:
                while True:  # delete what the check passed, or read again
                    current: bytes | None = await connection.fetchval(f"SELECT body FROM {self._table.quoted} WHERE id = $1", key)
                    check(current)
                    if current is None:
                        raise self._rules.not_found(key)
                    status = await connection.execute(f"DELETE FROM {self._table.quoted} WHERE id = $1 AND body::text = $2", key, current.decode())
                    if status == "DELETE 1":
                        break
        if status == "DELETE 0":
            raise self._rules.not_found(key)

    async def replace_all(self, records: Iterable[dict[str, Any]]) -> None:
        """In one transaction; the table lock keeps creates out until it commits, so none can
        take an id from the sequence that an imported record holds."""
        async with self.connection(change=True) as connection, connection.transaction():
            await self._emptied(connection)
            await self._fill(connection, records)

    async def _emptied(self, connection: asyncpg.Connection) -> None:
        await connection.execute(f"LOCK TABLE {self._table.quoted} IN SHARE ROW EXCLUSIVE MODE")
        await connection.execute(f"DELETE FROM {self._table.quoted}")

    async def _fill(self, connection: asyncpg.Connection, records: Iterable[dict[str, Any]]) -> None:
        """Add ``records`` in their order, completed as on create; the sequence goes on after
        the highest id ever used, ids left out taken after that. The ids are counted here and
        the sequence set once they are all known (the table lock keeps every create out
        meanwhile): a sequence is never rolled back, so a refused fill must not move it."""
        following = await self._following(connection) if self._rules.counted_ids else 0
        made, after = self._rules.completed(records, following)
        if after != following:
            await connection.execute(f"SELECT setval('{self._table.ids}', $1, false)", after)
        rows = [(self._rules.key(record), dump(record)) for record in made]
        await connection.copy_records_to_table(self._table.name, records=rows, columns=["id", "body"])

    async def _following(self, connection: asyncpg.Connection) -> int:
        """The id the sequence gives next."""
        following: int = await connection.fetchval(f"SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM {self._table.ids}")
        return following

    async def _ids_after(self, connection: asyncpg.Connection, keys: builtins.list[str]) -> None:
        """The sequence moved past ``keys`` (never back: ids given out stay given out)."""
        if keys:
            following = await self._following(connection)
            await connection.execute(f"SELECT setval('{self._table.ids}', $1, false)", self._rules.next_id(following, keys))

    # -- snapshots: a row of cms_mock_snapshots each, the records as one JSON object ------

    async def save_snapshot(self, name: str) -> tuple[Snapshot, bool]:
        """One statement: the records as one consistent view, in creation order."""
        async with self.connection(change=True) as connection:
            row = await connection.fetchrow(
                f"""INSERT INTO cms_mock_snapshots (table_name, name, records, count, created_at)
                    SELECT $1, $2, coalesce(json_object_agg(id, body ORDER BY seq), '{{}}'), count(*), $3 FROM {self._table.quoted}
                    ON CONFLICT (table_name, name) DO UPDATE SET records = excluded.records, count = excluded.count, created_at = excluded.created_at
                    RETURNING count, created_at, xmax <> 0 AS replaced""",
                self._table.name,
                name,
                timestamp(),
            )
        return Snapshot(name, row["count"], row["created_at"]), row["replaced"]

    async def snapshots(self) -> builtins.list[Snapshot]:
        async with self.connection() as connection:
            rows = await connection.fetch(
                "SELECT name, count, created_at FROM cms_mock_snapshots WHERE table_name = $1 ORDER BY created_at, name", self._table.name
            )
        return [Snapshot(row["name"], row["count"], row["created_at"]) for row in rows]

    async def restore_snapshot(self, name: str) -> None:
        async with self.connection(change=True) as connection, connection.transaction():
            exists = "SELECT 1 FROM cms_mock_snapshots WHERE table_name = $1 AND name = $2 FOR SHARE"  # not deleted before the copy below
            if not await connection.fetchval(exists, self._table.name, name):
                raise SnapshotNotFound(name)
            await self._emptied(connection)
            keys = await connection.fetch(
                f"""INSERT INTO {self._table.quoted} (id, body) SELECT member.key, member.value
                    FROM cms_mock_snapshots, json_each(records) WITH ORDINALITY AS member(key, value, position)
                    WHERE table_name = $1 AND name = $2 ORDER BY position RETURNING id""",
                self._table.name,
                name,
            )
            if self._rules.counted_ids:
                await self._ids_after(connection, [row["id"] for row in keys])

    async def delete_snapshot(self, name: str) -> None:
        async with self.connection(change=True) as connection:
            status = await connection.execute("DELETE FROM cms_mock_snapshots WHERE table_name = $1 AND name = $2", self._table.name, name)
        if status == "DELETE 0":
            raise SnapshotNotFound(name)

    def _storable(self, key: str, check: Check | None = None) -> None:
        """PostgreSQL's text holds no NUL character, so no record has an id with one: a 404,
        as the spec says of any id no record has, not the database's refusal (or what a
        ``check`` says of no record)."""
        if "\x00" in key:
            if check is not None:
                check(None)
            raise self._rules.not_found(key)
