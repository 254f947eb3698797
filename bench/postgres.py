"""A throwaway PostgreSQL server for the benchmark, and N customers loaded into it fast.

The server is the tests' throwaway cluster (``tests/support/postgres.py``) with its durable defaults
(``fsync``, ``synchronous_commit``, ``full_page_writes`` on; stock ``shared_buffers``): a
benchmark measures what users get. Nothing is tuned.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg

from cms_mock.services import SERVICES
from cms_mock.stores.postgres import PostgresStore
from cms_mock.stores.records import dump
from tests.support.data import customer, customer_id
from tests.support.postgres import Cluster, server_binaries

SERVICE = SERVICES["cms"]
TABLE = SERVICE.table
SEEDED_PREFIX = customer_id(0)[:24]
"""Every seeded id starts so; ids the service makes (uuid4) practically never do."""
REPORTED_SETTINGS = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_level", "shared_buffers", "max_wal_size", "max_connections")


def throwaway_cluster(port: int, otherwise: str) -> Cluster:
    """A durable PostgreSQL server of our own in a temporary directory, started; ``otherwise``
    says what to pass instead when the server is not installed."""
    bindir = server_binaries()
    if bindir is None:
        raise SystemExit(f"PostgreSQL's server is not installed (apt-get install postgresql), or pass {otherwise}")
    cluster = Cluster(bindir, port, durable=True)
    cluster.init()
    cluster.start()
    return cluster


def with_database(url: str, database: str) -> str:
    """``url`` (a server's) pointing at ``database`` instead."""
    head, _, _ = url.rpartition("/")
    return f"{head}/{database}"


async def _admin(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def settings(url: str) -> dict[str, str]:
    """The server's settings that matter to the figures (durability, memory)."""

    async def read() -> dict[str, str]:
        connection = await asyncpg.connect(url)
        try:
            return {name: await connection.fetchval(f"SHOW {name}") for name in REPORTED_SETTINGS}
        finally:
            await connection.close()

    return asyncio.run(read())


def fresh_database(server_url: str, name: str) -> str:
    """An empty database ``name`` (dropped first if it is there); its URL."""
    asyncio.run(_admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"))
    return with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    asyncio.run(_admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def _raw_json(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec("json", schema="pg_catalog", encoder=bytes, decoder=bytes, format="binary")


def _rows(count: int) -> Iterator[tuple[str, bytes]]:
    for index in range(count):
        record = customer(index)
        yield record["id"], dump(record)


def seed(url: str, count: int) -> dict[str, Any]:
    """``count`` customers in the service's table, as the service itself would have stored them.

    The schema is the service's own: a ``PostgresStore`` is opened once (which creates it and
    the list's indexes, marks the table initialised and adds the samples), the samples are deleted, and the customers are
    loaded with one COPY. Then ``VACUUM (ANALYZE)`` (statistics, hint bits, visibility map) and a
    ``CHECKPOINT``, so the load's dirty pages are not written during the measurements.
    """

    async def load() -> dict[str, Any]:
        started = time.perf_counter()
        store = PostgresStore(url, TABLE, SERVICE.rules, fields=SERVICE.collection.fields)
        await store.open()
        await store.close()
        connection = await asyncpg.connect(url)
        try:
            await _raw_json(connection)
            if not await connection.fetchval("SELECT count(*) FROM cms_mock_tables WHERE name = $1", TABLE):
                raise RuntimeError(f"the store did not mark {TABLE} initialised: the service would add its samples")
            await connection.execute(f"DELETE FROM {TABLE}")
            await connection.copy_records_to_table(TABLE, records=_rows(count), columns=["id", "body"])
            loaded = time.perf_counter()
            await connection.execute(f"VACUUM (ANALYZE) {TABLE}")
            await connection.execute("CHECKPOINT")
            total = await connection.fetchval(f"SELECT count(*) FROM {TABLE}")
            size = await connection.fetchval(f"SELECT pg_total_relation_size('{TABLE}')")
        finally:
            await connection.close()
        if total != count:
            raise RuntimeError(f"seeded {total} customers, not {count}")
        return {"copy_s": loaded - started, "seed_s": time.perf_counter() - started, "table_mib": size / 2**20}

    return asyncio.run(load())


def created_ids(url: str) -> list[str]:
    """Ids of the customers the service created (not seeded)."""

    async def read() -> list[str]:
        connection = await asyncpg.connect(url)
        try:
            return [row[0] for row in await connection.fetch(f"SELECT id FROM {TABLE} WHERE id NOT LIKE $1 || '%'", SEEDED_PREFIX)]
        finally:
            await connection.close()

    return asyncio.run(read())


def add_customers(url: str, count: int) -> list[str]:
    """``count`` more customers with uuid4 ids, as POST would have made them: to delete."""

    async def add() -> list[str]:
        rows = []
        for index in range(count):
            record = {**customer(index), "id": str(uuid.uuid4()), "name": "Load Test"}
            rows.append((record["id"], dump(record)))
        connection = await asyncpg.connect(url)
        try:
            await _raw_json(connection)
            await connection.copy_records_to_table(TABLE, records=rows, columns=["id", "body"])
        finally:
            await connection.close()
        return [key for key, _ in rows]

    return asyncio.run(add())


def remove_created(url: str) -> int:
    """Delete what the service created, back to the seeded customers; how many there were."""

    async def remove() -> int:
        connection = await asyncpg.connect(url)
        try:
            status = await connection.execute(f"DELETE FROM {TABLE} WHERE id NOT LIKE $1 || '%'", SEEDED_PREFIX)
        finally:
            await connection.close()
        return int(status.split()[-1])

    return asyncio.run(remove())
