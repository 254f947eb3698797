"""The PostgreSQL store (``DATABASE_URL``): one durable state for any number of instances.

Each service has its own table; a record is a row ``(seq, id, body)``: ``seq`` keeps creation
order (the list's order), ``body`` is the record's compact JSON exactly as answered (``json``
keeps the text as written, key order included; ``jsonb`` would reorder the keys). Nothing is
cached: every read asks the database, so every instance sees every other's acknowledged
writes at once. Integer ids come from a sequence, which never gives a value twice.

The database being down is a state, not a crash: every call that needs it answers 503 with
the reason within ``timeout`` seconds (the whole call, not each step), and the pool connects
again when it is back.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import asyncpg
import orjson

from cms_mock.errors import MAYBE_CHANGED, NOTHING_CHANGED, SnapshotNotFound, StoreRefused, StoreUnavailable
from cms_mock.stores import Check, Fields, Listing, Page, Query, Records, Snapshot, Streamed, folded
from cms_mock.stores.records import LARGEST_ID, RecordRules, dump, timestamp

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 3
"""The layout this version writes. A database at a newer version is refused, never changed."""

_MIGRATIONS = {
    1: ["CREATE TABLE cms_mock_tables (name text PRIMARY KEY, initialised_at timestamptz NOT NULL DEFAULT now())"],
    2: [
        """CREATE TABLE cms_mock_snapshots (table_name text NOT NULL, name text NOT NULL, records json NOT NULL,
           count integer NOT NULL, created_at text NOT NULL, PRIMARY KEY (table_name, name))"""
    ],
    3: [  # state.postgres.PostgresState: the journal, coverage counts and fault rules
        "CREATE TABLE cms_mock_journal (service text NOT NULL, seq bigint GENERATED ALWAYS AS IDENTITY, entry json NOT NULL, PRIMARY KEY (service, seq))",
        """CREATE TABLE cms_mock_coverage (service text NOT NULL, worker text NOT NULL, operation text NOT NULL, status integer NOT NULL,
           count bigint NOT NULL, PRIMARY KEY (service, worker, operation, status))""",
        """CREATE TABLE cms_mock_faults (service text NOT NULL, id text NOT NULL, position bigint GENERATED ALWAYS AS IDENTITY,
           operation text NOT NULL, rule json NOT NULL, seen bigint NOT NULL DEFAULT 0, injected bigint NOT NULL DEFAULT 0, remaining bigint,
           PRIMARY KEY (service, id))""",
        "CREATE INDEX ON cms_mock_faults (service, operation)",
    ],
}
"""The statements that bring the schema from version ``n - 1`` to ``n``."""

_BATCH = 1000
"""Records per query of a list: the most one request holds in memory at a time."""

_POOL_SIZE = 10
"""Connections per process (each worker, each instance): enough to keep two cores busy."""

_RETRY_AFTER = 1.0
"""Seconds a failed start-up (the database down) is the answer for every request, before the
next request tries again: a crowd of requests makes one attempt, not one each, in turn."""

_CONFIGURATION = (ValueError, asyncpg.ClientConfigurationError, asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidCatalogNameError)
"""A ``DATABASE_URL`` that cannot work (unparsable, wrong password, no such database): the start
is refused; a request meanwhile gets a 503 that says so."""

_UNREACHABLE = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)
"""What connecting to a database that is down, restarting or unreachable raises (refused and
reset connections and timeouts are ``OSError``s)."""

_CUT_OFF = (OSError, asyncpg.InterfaceError, asyncpg.InternalClientError, asyncpg.PostgresConnectionError, asyncpg.OperatorInterventionError)
"""Failures after a statement was sent that leave its outcome unknown: the connection lost, a
timeout, the server shut down under it. Any other server error rolled the statement back."""


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _outcome(change: bool, known: bool) -> str:
    if not change:
        return ""
    return f"; {NOTHING_CHANGED if known else MAYBE_CHANGED}"


async def _session_kept(_connection: asyncpg.Connection) -> None:
    """The pool's reset between borrowers: nothing beyond asyncpg's own (an open transaction is
    still rolled back). The store sets no session state (no ``SET``, ``LISTEN``, cursors or
    session advisory locks), and asyncpg's default reset query is one more round trip per
    request: 1,100 vs 1,818 sequential gets a second, measured side by side."""


async def _raw_json(connection: asyncpg.Connection) -> None:
    """``json`` values cross as the bytes they are (its binary form is its text): no decoding
    into ``str`` and encoding back for every record read."""
    await connection.set_type_codec("json", schema="pg_catalog", encoder=bytes, decoder=bytes, format="binary")


class PostgresStore:
    """Records keyed by id in one table of a PostgreSQL database (a ``RecordStore``)."""

    def __init__(self, url: str, table: str, rules: RecordRules, *, timeout: float = 5.0, fields: Fields | None = None) -> None:
        """``fields``: the record's fields, each given a column a query reads (see ``_columns``)."""
        self._url = url
        self._name = table
        self._table = f'"{table}"'
        self._ids = f'"{table}_ids"'
        self._rules = rules
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._ready = False
        self._starting: asyncio.Task[None] | None = None
        self._failed_at = -_RETRY_AFTER
        self._closed = False
        self._fields = fields or Fields()
        self._search_column = ""
        self._fold = ""

    # -- life cycle ------------------------------------------------------------------------

    async def open(self, create: bool = True) -> None:
        """Create the pool and the schema. A database that is down now is waited for by each
        request, not by the start (instances may start before their database); one that can
        never work (``_CONFIGURATION``, a newer schema) refuses the start. ``create=False``
        changes nothing: it refuses a database this service never initialised."""
        self._pool = asyncpg.create_pool(
            self._url,
            min_size=0,
            max_size=_POOL_SIZE,
            timeout=self._timeout,
            command_timeout=self._timeout,
            init=_raw_json,
            reset=_session_kept,
        )
        await self._pool
        try:
            async with asyncio.timeout(self._timeout):
                if create:
                    await self._start()
                else:
                    await self._find()
        except (StoreUnavailable, TimeoutError) as exc:
            reason = exc.reason if isinstance(exc, StoreUnavailable) else f"the database did not answer within {self._timeout:g} s"
            if not create:
                raise StoreRefused(reason) from None
            logger.warning("%s; requests answer 503 until it is reachable", reason)

    async def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), self._timeout)
            except TimeoutError:
                self._pool.terminate()

    async def _start(self) -> None:
        """Initialise once for every request waiting: one attempt at a time, shared; a failure
        is every waiter's answer, and the answer for ``_RETRY_AFTER`` seconds after it."""
        if self._ready:
            return
        task = self._starting
        if task is None or (task.done() and time.monotonic() - self._failed_at >= _RETRY_AFTER):
            task = self._starting = asyncio.create_task(self._initialise())
            task.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved even if nobody waits
        await asyncio.shield(task)

    async def _initialise(self) -> None:
        """The schema at ``SCHEMA_VERSION`` and this service's table, with the samples the first
        time only; one instance at a time (an advisory lock), so several can start together."""
        try:
            async with self._session() as connection, connection.transaction():
                await connection.execute("SELECT pg_advisory_xact_lock(hashtext('cms_mock schema'))")
                await connection.execute("CREATE TABLE IF NOT EXISTS cms_mock_schema (version integer NOT NULL)")
                version = await self._version(connection)
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _MIGRATIONS[step]:
                        await connection.execute(statement)
                    await connection.execute("INSERT INTO cms_mock_schema (version) VALUES ($1)", step)
                await connection.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._table} (seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE, id text PRIMARY KEY, body json NOT NULL)"
                )
                await connection.execute(f"CREATE SEQUENCE IF NOT EXISTS {self._ids}")
                await self._columns(connection)
                if await connection.fetchval("INSERT INTO cms_mock_tables (name) VALUES ($1) ON CONFLICT DO NOTHING RETURNING 1", self._name):
                    await self._fill(connection, self._rules.samples())
                    logger.info("created table %s with the sample records", self._name)
        except BaseException:
            self._failed_at = time.monotonic()
            raise
        self._ready = True

    async def _columns(self, connection: asyncpg.Connection) -> None:
        """Columns the database computes from ``body`` on every write (``GENERATED ... STORED``),
        so a list query reads them instead of parsing each row's JSON: one per field of the
        record (``f_<field>``: text in code point order, or a number), those of the indexed
        fields indexed with ``seq`` (a count is an index-only scan, ties come in creation order),
        and one with the searched fields' text in lower case (``search_<hash>``, named for its
        fields and case folding, so a change of either makes it anew). Lower case is ICU's root
        locale where the server has it (all of Unicode, as Python's ``str.lower``), else the
        database's own. Adding columns to a table with rows rewrites it, once, at the first
        start that needs them. A store opened without ``fields`` (a tool's, a test's) leaves the
        columns as they are, never dropping what the service made."""
        if await connection.fetchval("SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu'"):
            self._fold = ' COLLATE "und-x-icu"'
        else:
            logger.warning("the database has no ICU collation: q ignores the case of the letters its own locale knows (with C, only ASCII)")
        if not self._fields.names:
            return
        fields = self._fields
        wanted = {
            f"f_{field}": f"numeric GENERATED ALWAYS AS ((body->>{_literal(field)})::numeric) STORED"
            if field in fields.numbers
            else f'text COLLATE "C" GENERATED ALWAYS AS (body->>{_literal(field)}) STORED'
            for field in fields.names
        }
        if fields.searched:
            self._search_column = "search_" + hashlib.md5(f"{fields.searched}{self._fold}".encode(), usedforsecurity=False).hexdigest()[:8]
            wanted[self._search_column] = f"text GENERATED ALWAYS AS ({self._search_text(fields.searched)}) STORED"
        present = await connection.fetchval(
            "SELECT coalesce(array_agg(attname::text), '{}') FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
            self._name,
        )
        changes = [f'DROP COLUMN "{name}"' for name in present if name.startswith(("f_", "search_")) and name not in wanted]
        changes += [f'ADD COLUMN "{name}" {definition}' for name, definition in wanted.items() if name not in present]
        if changes:
            await connection.execute(f"ALTER TABLE {self._table} {', '.join(changes)}")
        for field in fields.indexed:
            await connection.execute(f'CREATE INDEX IF NOT EXISTS "{self._name}_f_{field}" ON {self._table} ("f_{field}", seq)')
        if self._search_column:
            await self._trigrams(connection)
        if changes:
            await connection.execute(f"ANALYZE {self._table}")  # the planner's statistics of the new columns

    async def _trigrams(self, connection: asyncpg.Connection) -> None:
        """A trigram index on the search column (``pg_trgm``, where the server has it and lets
        this user create it), so ``q`` (``LIKE '%text%'``) reads the rows that can match, not
        every row (about 130 -> 13 ms at 100,000 customers); without it ``q`` still works, slower."""
        try:
            async with connection.transaction():  # a savepoint: a refusal leaves the rest of the start standing
                await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                await connection.execute(
                    f'CREATE INDEX IF NOT EXISTS "{self._name}_{self._search_column}" ON {self._table} USING gin ("{self._search_column}" gin_trgm_ops)'
                )
        except asyncpg.PostgresError as exc:
            logger.warning("no trigram index for q (%s): a search reads every row", _why(exc))

    def _search_text(self, fields: tuple[str, ...]) -> str:
        """The fields' text in lower case, joined by a character no field and no search text
        holds; a final sigma read as any other (``store.folded``)."""
        text = " || E'\\x1f' || ".join(f"coalesce(body->>{_literal(field)}, '')" for field in fields)
        return f"replace(lower(({text}){self._fold}), E'\\u03c2', E'\\u03c3')" if fields else "''"

    def _field(self, name: str, numbers: frozenset[str]) -> str:
        """A field of the record in a query: its column, or (a store opened without ``fields``)
        read from ``body``: text in code point order, as Python compares strings, or a number."""
        if name in self._fields.names:
            return f'"f_{name}"'
        return f"((body->>{_literal(name)})::numeric)" if name in numbers else f'((body->>{_literal(name)}) COLLATE "C")'

    async def _find(self) -> None:
        """This service's table, as it is: refused when there is none."""
        async with self._session() as connection:
            if await connection.fetchval("SELECT to_regclass('cms_mock_tables') IS NULL"):
                raise StoreRefused("the database holds no cms-mock schema")
            await self._version(connection)
            if not await connection.fetchval("SELECT 1 FROM cms_mock_tables WHERE name = $1", self._name):
                raise StoreRefused(f"the database has no {self._name} table")
        self._ready = True

    @staticmethod
    async def _version(connection: asyncpg.Connection) -> int:
        version: int = await connection.fetchval("SELECT coalesce(max(version), 0) FROM cms_mock_schema")
        if version > SCHEMA_VERSION:
            raise StoreRefused(f"the database's schema is at version {version}, newer than this cms-mock knows ({SCHEMA_VERSION}); upgrade cms-mock")
        return version

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
            rows = await connection.fetch(f"SELECT seq, body FROM {self._table} WHERE seq > $1 ORDER BY seq LIMIT {_BATCH}", after)
        return [(row[0], row[1]) for row in rows]

    async def find(self, query: Query) -> Page:
        """The count and the first records in one snapshot (a read-only, repeatable-read
        transaction): with a ``limit``, the count and the page; without, the matches' ``seq`` in
        their order (their count is its length) and the first batch of them. Records past the
        first batch are read in batches as the answer is sent, as ``list`` does."""
        where, arguments = self._where(query)
        order = ", ".join(f"{self._field(field, query.fields.numbers)}{' DESC' if descending else ''}" for field, descending in query.sort)
        order = f"{order}, seq" if order else "seq"
        async with self.connection() as connection, connection.transaction(isolation="repeatable_read", readonly=True):
            if query.limit is None:
                seqs: builtins.list[int] = await connection.fetchval(
                    f"SELECT coalesce(array_agg(seq ORDER BY {order}), '{{}}') FROM {self._table} WHERE {where}", *arguments
                )
                chosen = seqs[query.offset :]
                first = await self._bodies(connection, chosen[:_BATCH])
            else:
                total: int = await connection.fetchval(f"SELECT count(*) FROM {self._table} WHERE {where}", *arguments)
                rows = []
                if query.offset < total:
                    page = f"SELECT body FROM {self._table} WHERE {where} ORDER BY {order} LIMIT {query.limit:d} OFFSET {query.offset:d}"
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
        rows = await connection.fetch(f"SELECT seq, body FROM {self._table} WHERE seq = ANY($1::bigint[])", seqs)
        bodies = {row[0]: row[1] for row in rows}
        return [bodies[seq] for seq in seqs if seq in bodies]

    def _where(self, query: Query) -> tuple[str, builtins.list[Any]]:
        conditions, arguments = ["true"], builtins.list[Any]()
        for field, value in query.equal:
            arguments.append(value)
            conditions.append(f"{self._field(field, frozenset())} = ${len(arguments)}")
        if query.text is not None:
            arguments.append("%" + folded(query.text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
            known = self._search_column and query.fields.searched == self._fields.searched
            searched = f'"{self._search_column}"' if known else self._search_text(query.fields.searched)
            conditions.append(f"{searched} LIKE ${len(arguments)}")
        return " AND ".join(conditions), arguments

    async def get(self, key: str) -> bytes:
        self._storable(key)
        async with self.connection() as connection:
            body: bytes | None = await connection.fetchval(f"SELECT body FROM {self._table} WHERE id = $1", key)
        if body is None:
            raise self._rules.not_found(key)
        return body

    async def keyed(self) -> bytes:
        """One statement, so one moment (the list's batches are each their own)."""
        async with self.connection() as connection:
            body: bytes = await connection.fetchval(f"SELECT coalesce(json_object_agg(id, body ORDER BY seq), '{{}}') FROM {self._table}")
        return body

    async def count(self) -> int:
        async with self.connection() as connection:
            total: int = await connection.fetchval(f"SELECT count(*) FROM {self._table}")
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
                await connection.execute(f"INSERT INTO {self._table} (id, body) VALUES ($1, $2)", record["id"], body)
                return body
            # The id comes from the sequence inside the statement: the record is written around it.
            template = dump(self._rules.create(fields, counted=0))
            assert template.startswith(_COUNTED_PREFIX)
            made: bytes | None = await connection.fetchval(
                f"""INSERT INTO {self._table} (id, body) SELECT next::text, ('{{"id":' || next || $1)::json
                    FROM (SELECT nextval('{self._ids}') AS next) AS id WHERE next <= {LARGEST_ID} RETURNING body""",
                template[len(_COUNTED_PREFIX) :].decode(),
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
                current: bytes | None = await connection.fetchval(f"SELECT body FROM {self._table} WHERE id = $1", key)
                if check is not None:
                    check(current)
                if current is None:
                    raise self._rules.not_found(key)
                body = dump(self._rules.update(orjson.loads(current), changes))
                status = await connection.execute(f"UPDATE {self._table} SET body = $2 WHERE id = $1 AND body::text = $3", key, body, current.decode())
                if status == "UPDATE 1":
                    return body

    async def delete(self, key: str, check: Check | None = None) -> None:
        self._storable(key, check)
        async with self.connection(change=True) as connection:
            if check is None:
                status = await connection.execute(f"DELETE FROM {self._table} WHERE id = $1", key)
            else:
                while True:  # delete what the check passed, or read again
                    current: bytes | None = await connection.fetchval(f"SELECT body FROM {self._table} WHERE id = $1", key)
                    check(current)
                    if current is None:
                        raise self._rules.not_found(key)
                    status = await connection.execute(f"DELETE FROM {self._table} WHERE id = $1 AND body::text = $2", key, current.decode())
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
        await connection.execute(f"LOCK TABLE {self._table} IN SHARE ROW EXCLUSIVE MODE")
        await connection.execute(f"DELETE FROM {self._table}")

    async def _fill(self, connection: asyncpg.Connection, records: Iterable[dict[str, Any]]) -> None:
        """Add ``records`` in their order, completed as on create; the sequence goes on after
        the highest id ever used, ids left out taken after that. The ids are counted here and
        the sequence set once they are all known (the table lock keeps every create out
        meanwhile): a sequence is never rolled back, so a refused fill must not move it."""
        following = await self._following(connection) if self._rules.counted_ids else 0
        made, after = self._rules.completed(records, following)
        if after != following:
            await connection.execute(f"SELECT setval('{self._ids}', $1, false)", after)
        rows = [(str(record["id"]), dump(record)) for record in made]
        await connection.copy_records_to_table(self._name, records=rows, columns=["id", "body"])

    async def _following(self, connection: asyncpg.Connection) -> int:
        """The id the sequence gives next."""
        following: int = await connection.fetchval(f"SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM {self._ids}")
        return following

    async def _ids_after(self, connection: asyncpg.Connection, keys: builtins.list[str]) -> None:
        """The sequence moved past ``keys`` (never back: ids given out stay given out)."""
        if keys:
            following = await self._following(connection)
            await connection.execute(f"SELECT setval('{self._ids}', $1, false)", self._rules.next_id(following, keys))

    # -- snapshots: a row of cms_mock_snapshots each, the records as one JSON object ------

    async def save_snapshot(self, name: str) -> tuple[Snapshot, bool]:
        """One statement: the records as one consistent view, in creation order."""
        async with self.connection(change=True) as connection:
            row = await connection.fetchrow(
                f"""INSERT INTO cms_mock_snapshots (table_name, name, records, count, created_at)
                    SELECT $1, $2, coalesce(json_object_agg(id, body ORDER BY seq), '{{}}'), count(*), $3 FROM {self._table}
                    ON CONFLICT (table_name, name) DO UPDATE SET records = excluded.records, count = excluded.count, created_at = excluded.created_at
                    RETURNING count, created_at, xmax <> 0 AS replaced""",
                self._name,
                name,
                timestamp(),
            )
        return Snapshot(name, row["count"], row["created_at"]), row["replaced"]

    async def snapshots(self) -> builtins.list[Snapshot]:
        async with self.connection() as connection:
            rows = await connection.fetch("SELECT name, count, created_at FROM cms_mock_snapshots WHERE table_name = $1 ORDER BY created_at, name", self._name)
        return [Snapshot(row["name"], row["count"], row["created_at"]) for row in rows]

    async def restore_snapshot(self, name: str) -> None:
        async with self.connection(change=True) as connection, connection.transaction():
            exists = "SELECT 1 FROM cms_mock_snapshots WHERE table_name = $1 AND name = $2 FOR SHARE"  # not deleted before the copy below
            if not await connection.fetchval(exists, self._name, name):
                raise SnapshotNotFound(name)
            await self._emptied(connection)
            keys = await connection.fetch(
                f"""INSERT INTO {self._table} (id, body) SELECT member.key, member.value
                    FROM cms_mock_snapshots, json_each(records) WITH ORDINALITY AS member(key, value, position)
                    WHERE table_name = $1 AND name = $2 ORDER BY position RETURNING id""",
                self._name,
                name,
            )
            if self._rules.counted_ids:
                await self._ids_after(connection, [row["id"] for row in keys])

    async def delete_snapshot(self, name: str) -> None:
        async with self.connection(change=True) as connection:
            status = await connection.execute("DELETE FROM cms_mock_snapshots WHERE table_name = $1 AND name = $2", self._name, name)
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

    # -- connections -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def connection(self, change: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection to a database with this service's table in it, for one call that
        ends within ``timeout`` seconds, or answers 503 saying what is known of the change."""
        sent = False
        try:
            async with asyncio.timeout(self._timeout):
                try:
                    await self._start()
                except StoreUnavailable as exc:  # the schema could not be made: nothing was sent
                    raise StoreUnavailable(f"{exc.reason}{_outcome(change, True)}") from None
                async with self._session(change) as connection:
                    sent = True
                    yield connection
        except TimeoutError:
            raise StoreUnavailable(f"the database did not answer within {self._timeout:g} s{_outcome(change, not sent)}") from None
        except StoreRefused as exc:
            raise StoreUnavailable(f"{exc}{_outcome(change, True)}") from None

    @contextlib.asynccontextmanager
    async def _session(self, change: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; whatever the database does wrong becomes a 503 that says what
        happened, and whether the change may have been made."""
        if self._closed or self._pool is None:
            raise StoreUnavailable(f"the store is closed{_outcome(change, True)}")
        try:
            connection = await self._pool.acquire()
        except _CONFIGURATION as exc:
            raise StoreRefused(f"DATABASE_URL cannot be used: {_why(exc)}") from None
        except _UNREACHABLE as exc:
            raise StoreUnavailable(f"the database is unreachable ({_why(exc)}){_outcome(change, True)}") from None
        try:
            yield connection
        except asyncpg.UndefinedTableError as exc:  # dropped under us: make the schema again next time
            self._ready = False
            raise StoreUnavailable(f"the database lost its tables ({_why(exc)}){_outcome(change, True)}") from None
        except _CUT_OFF as exc:
            raise StoreUnavailable(f"the database failed ({_why(exc)}){_outcome(change, False)}") from None
        except asyncpg.PostgresError as exc:  # the server refused it: the statement was rolled back
            raise StoreUnavailable(f"the database refused the statement ({_why(exc)}){_outcome(change, True)}") from None
        finally:
            with contextlib.suppress(*_UNREACHABLE):
                await self._pool.release(connection)


_COUNTED_PREFIX = b'{"id":0'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
