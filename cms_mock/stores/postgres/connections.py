"""The connections to the database: a pool, made ready once before the first call uses it, and
each call's connection within ``timeout`` seconds (the whole call, not each step).

A database that is down is waited for by each request, not by the start (instances may start
before their database); the pool connects again when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg

from cms_mock.errors import StoreRefused, StoreUnavailable
from cms_mock.stores.postgres import failures
from cms_mock.stores.postgres.failures import outcome

logger = logging.getLogger(__name__)

_POOL_SIZE = 10
"""Connections per process (each worker, each instance): enough to keep two cores busy."""

_RETRY_AFTER = 1.0
"""Seconds a failed start-up (the database down) is the answer for every request, before the
next request tries again: a crowd of requests makes one attempt, not one each, in turn."""

Step = Callable[[asyncpg.Connection], Awaitable[None]]


async def _session_kept(_connection: asyncpg.Connection) -> None:
    """The pool's reset between borrowers: nothing beyond asyncpg's own (an open transaction is
    still rolled back). The store sets no session state (no ``SET``, ``LISTEN``, cursors or
    session advisory locks), and asyncpg's default reset query is one more round trip per
    request."""


async def _raw_json(connection: asyncpg.Connection) -> None:
    """``json`` values cross as the bytes they are (its binary form is its text): no decoding
    into ``str`` and encoding back for every record read."""
    await connection.set_type_codec("json", schema="pg_catalog", encoder=bytes, decoder=bytes, format="binary")


class Database:
    """A pool of connections to one database, made ready once by ``prepare`` (in a transaction)
    before the first call uses it, or found ready by ``check``."""

    def __init__(self, url: str, timeout: float, *, prepare: Step, check: Step) -> None:
        self._url = url
        self._timeout = timeout
        self._prepare = prepare
        self._check = check
        self._pool: asyncpg.Pool | None = None
        self._ready = False
        self._starting: asyncio.Task[None] | None = None
        self._failed_at = -_RETRY_AFTER
        self._closed = False

    async def open(self, create: bool) -> None:
        """Create the pool, and prepare the database (``create``) or check it is ready. One that
        cannot be reached now is waited for by each request; one that can never work
        (``failures.CONFIGURATION``, a ``StoreRefused`` of a step) refuses the start, and so
        does any failure without ``create``."""
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
                    await self._checked()
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

    @contextlib.asynccontextmanager
    async def connection(self, change: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection to a prepared database, for one call that ends within ``timeout``
        seconds, or answers 503 saying what is known of the change."""
        sent = False
        try:
            async with asyncio.timeout(self._timeout):
                try:
                    await self._start()
                except StoreUnavailable as exc:  # the schema could not be made: nothing was sent
                    raise StoreUnavailable(f"{exc.reason}{outcome(change, True)}") from None
                async with self._session(change) as connection:
                    sent = True
                    yield connection
        except TimeoutError:
            raise StoreUnavailable(f"the database did not answer within {self._timeout:g} s{outcome(change, not sent)}") from None
        except StoreRefused as exc:
            raise StoreUnavailable(f"{exc}{outcome(change, True)}") from None

    async def _start(self) -> None:
        """Prepare once for every request waiting: one attempt at a time, shared; a failure is
        every waiter's answer, and the answer for ``_RETRY_AFTER`` seconds after it."""
        if self._ready:
            return
        task = self._starting
        if task is None or (task.done() and time.monotonic() - self._failed_at >= _RETRY_AFTER):
            task = self._starting = asyncio.create_task(self._prepared())
            task.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved even if nobody waits
        await asyncio.shield(task)

    async def _prepared(self) -> None:
        try:
            async with self._session() as connection, connection.transaction():
                await self._prepare(connection)
        except BaseException:
            self._failed_at = time.monotonic()
            raise
        self._ready = True

    async def _checked(self) -> None:
        async with self._session() as connection:
            await self._check(connection)
        self._ready = True

    @contextlib.asynccontextmanager
    async def _session(self, change: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; whatever the database does wrong becomes a 503 that says what
        happened, and whether the change may have been made (``failures``)."""
        if self._closed or self._pool is None:
            raise StoreUnavailable(f"the store is closed{outcome(change, True)}")
        connection = await failures.acquired(self._pool, change)
        try:
            with failures.answered(change, self._tables_lost):
                yield connection
        finally:
            with contextlib.suppress(*failures.UNREACHABLE):
                await self._pool.release(connection)

    def _tables_lost(self) -> None:
        """Dropped under us: prepare the database again next time."""
        self._ready = False
