"""The database's layout: the versioned schema (the store's tables, and the shared state's,
which ``state.postgres`` uses), and each service's table with the columns and indexes its
queries read."""

from __future__ import annotations

import hashlib
import logging

import asyncpg

from cms_mock.errors import StoreRefused
from cms_mock.stores.postgres.failures import why
from cms_mock.stores.postgres.sql import Table, literal

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


async def migrate(connection: asyncpg.Connection) -> None:
    """The schema at ``SCHEMA_VERSION``, one instance at a time (an advisory lock held until the
    caller's transaction ends), so several can start together."""
    await connection.execute("SELECT pg_advisory_xact_lock(hashtext('cms_mock schema'))")
    await connection.execute("CREATE TABLE IF NOT EXISTS cms_mock_schema (version integer NOT NULL)")
    version = await _version(connection)
    for step in range(version + 1, SCHEMA_VERSION + 1):
        for statement in _MIGRATIONS[step]:
            await connection.execute(statement)
        await connection.execute("INSERT INTO cms_mock_schema (version) VALUES ($1)", step)


async def made(connection: asyncpg.Connection, table: Table) -> bool:
    """The service's table, its id sequence and its columns, made where missing; whether the
    table is new (never initialised: the caller fills it)."""
    await connection.execute(
        f"CREATE TABLE IF NOT EXISTS {table.quoted} (seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE, id text PRIMARY KEY, body json NOT NULL)"
    )
    await connection.execute(f"CREATE SEQUENCE IF NOT EXISTS {table.ids}")
    await _columns(connection, table)
    return bool(await connection.fetchval("INSERT INTO cms_mock_tables (name) VALUES ($1) ON CONFLICT DO NOTHING RETURNING 1", table.name))


async def found(connection: asyncpg.Connection, table: Table) -> None:
    """The service's table, as it is: refused when there is none, or the schema is newer."""
    if await connection.fetchval("SELECT to_regclass('cms_mock_tables') IS NULL"):
        raise StoreRefused("the database holds no cms-mock schema")
    await _version(connection)
    if not await connection.fetchval("SELECT 1 FROM cms_mock_tables WHERE name = $1", table.name):
        raise StoreRefused(f"the database has no {table.name} table")


async def _version(connection: asyncpg.Connection) -> int:
    version: int = await connection.fetchval("SELECT coalesce(max(version), 0) FROM cms_mock_schema")
    if version > SCHEMA_VERSION:
        raise StoreRefused(f"the database's schema is at version {version}, newer than this cms-mock knows ({SCHEMA_VERSION}); upgrade cms-mock")
    return version


async def _columns(connection: asyncpg.Connection, table: Table) -> None:
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
        table.fold = ' COLLATE "und-x-icu"'
    else:
        logger.warning("the database has no ICU collation: q ignores the case of the letters its own locale knows (with C, only ASCII)")
    if not table.fields.names:
        return
    if table.fields.searched:
        table.search_column = "search_" + hashlib.md5(f"{table.fields.searched}{table.fold}".encode(), usedforsecurity=False).hexdigest()[:8]
    wanted = _wanted(table)
    present = await connection.fetchval(
        "SELECT coalesce(array_agg(attname::text), '{}') FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
        table.name,
    )
    changes = [f'DROP COLUMN "{name}"' for name in present if name.startswith(("f_", "search_")) and name not in wanted]
    changes += [f'ADD COLUMN "{name}" {definition}' for name, definition in wanted.items() if name not in present]
    if changes:
        await connection.execute(f"ALTER TABLE {table.quoted} {', '.join(changes)}")
    for field in table.fields.indexed:
        await connection.execute(f'CREATE INDEX IF NOT EXISTS "{table.name}_f_{field}" ON {table.quoted} ("f_{field}", seq)')
    if table.search_column:
        await _trigrams(connection, table)
    if changes:
        await connection.execute(f"ANALYZE {table.quoted}")  # the planner's statistics of the new columns


def _wanted(table: Table) -> dict[str, str]:
    """The computed columns ``table`` has, by name, with their definitions."""
    fields = table.fields
    wanted = {
        f"f_{field}": f"numeric GENERATED ALWAYS AS ((body->>{literal(field)})::numeric) STORED"
        if field in fields.numbers
        else f'text COLLATE "C" GENERATED ALWAYS AS (body->>{literal(field)}) STORED'
        for field in fields.names
    }
    if table.search_column:
        wanted[table.search_column] = f"text GENERATED ALWAYS AS ({table.search_text(fields.searched)}) STORED"
    return wanted


async def _trigrams(connection: asyncpg.Connection, table: Table) -> None:
    """A trigram index on the search column (``pg_trgm``, where the server has it and lets
    this user create it), so ``q`` (``LIKE '%text%'``) reads the rows that can match, not
    every row; without it ``q`` still works, slower."""
    try:
        async with connection.transaction():  # a savepoint: a refusal leaves the rest of the start standing
            await connection.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            await connection.execute(
                f'CREATE INDEX IF NOT EXISTS "{table.name}_{table.search_column}" ON {table.quoted} USING gin ("{table.search_column}" gin_trgm_ops)'
            )
    except asyncpg.PostgresError as exc:
        logger.warning("no trigram index for q (%s): a search reads every row", why(exc))
