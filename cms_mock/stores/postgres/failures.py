"""The database's failures as 503s (``StoreUnavailable``) that say what happened and whether a
change may have been made: the database being down is a state, not a crash."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import asyncpg

from cms_mock.errors import MAYBE_CHANGED, NOTHING_CHANGED, StoreRefused, StoreUnavailable

CONFIGURATION = (ValueError, asyncpg.ClientConfigurationError, asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidCatalogNameError)
"""A ``DATABASE_URL`` that cannot work (unparsable, wrong password, no such database): the start
is refused; a request meanwhile gets a 503 that says so."""

UNREACHABLE = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)
"""What connecting to a database that is down, restarting or unreachable raises (refused and
reset connections and timeouts are ``OSError``s)."""

_CUT_OFF = (OSError, asyncpg.InterfaceError, asyncpg.InternalClientError, asyncpg.PostgresConnectionError, asyncpg.OperatorInterventionError)
"""Failures after a statement was sent that leave its outcome unknown: the connection lost, a
timeout, the server shut down under it. Any other server error rolled the statement back."""


def why(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def outcome(change: bool, known: bool) -> str:
    """What a 503 adds of a change: nothing for a read; that nothing changed, or that it may have."""
    if not change:
        return ""
    return f"; {NOTHING_CHANGED if known else MAYBE_CHANGED}"


async def acquired(pool: asyncpg.Pool, change: bool) -> asyncpg.Connection:
    """A connection from ``pool``; a database that cannot be reached is a 503, a ``DATABASE_URL``
    that cannot work a ``StoreRefused``."""
    try:
        return await pool.acquire()
    except CONFIGURATION as exc:
        raise StoreRefused(f"DATABASE_URL cannot be used: {why(exc)}") from None
    except UNREACHABLE as exc:
        raise StoreUnavailable(f"the database is unreachable ({why(exc)}){outcome(change, True)}") from None


@contextlib.contextmanager
def answered(change: bool, tables_lost: Callable[[], None]) -> Iterator[None]:
    """Whatever the database does wrong in the block becomes a 503 that says what happened and
    whether the change may have been made; ``tables_lost`` is called when its tables were dropped."""
    try:
        yield
    except asyncpg.UndefinedTableError as exc:
        tables_lost()
        raise StoreUnavailable(f"the database lost its tables ({why(exc)}){outcome(change, True)}") from None
    except _CUT_OFF as exc:
        raise StoreUnavailable(f"the database failed ({why(exc)}){outcome(change, False)}") from None
    except asyncpg.PostgresError as exc:  # the server refused it: the statement was rolled back
        raise StoreUnavailable(f"the database refused the statement ({why(exc)}){outcome(change, True)}") from None
