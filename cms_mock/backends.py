"""Which store a service's records live in, and its journal, coverage and fault rules: the one
place a backend is chosen from settings."""

from __future__ import annotations

import os
from pathlib import Path

from cms_mock.services import Service
from cms_mock.settings import Settings
from cms_mock.state import ServiceState
from cms_mock.state.local import LocalState
from cms_mock.state.memory import MemoryState
from cms_mock.state.postgres import PostgresState
from cms_mock.stores import RecordStore
from cms_mock.stores.file import FileStore
from cms_mock.stores.memory import MemoryStore
from cms_mock.stores.postgres import PostgresStore
from cms_mock.workers import STATE_DIR, SUPERVISOR


def make_store(settings: Settings, service: Service) -> RecordStore:
    """PostgreSQL with ``DATABASE_URL``, memory with ``--in-memory``, else the JSON file."""
    if settings.database_url:
        return PostgresStore(settings.database_url, service.table, service.rules, timeout=settings.database_timeout, fields=service.collection.fields)
    if settings.in_memory:
        return MemoryStore(service.rules)
    return FileStore(settings.data_dir / service.data_file, service.rules)


def make_state(settings: Settings, service: Service, store: RecordStore, operations: list[str]) -> ServiceState:
    """In the database beside the records, with ``DATABASE_URL`` (every instance shares it);
    in memory with ``--in-memory``; else in the directory ``cms-mock --workers N`` made for its
    workers, or one of this process's."""
    if isinstance(store, PostgresStore):
        return PostgresState(store, service.table, settings.journal_size)
    if settings.in_memory:  # one process, and nothing written anywhere
        return MemoryState(settings.journal_size)
    shared = os.environ.get(STATE_DIR) if SUPERVISOR in os.environ else None  # a worker of ours, not an inherited name
    return LocalState(Path(shared, service.key) if shared else None, operations, settings.journal_size)


def where(settings: Settings, service: Service) -> str:
    """Where the records live, for the log (a database's password is not shown)."""
    if settings.database_url:
        return f"table {service.table} of {settings.database_shown}"
    if settings.in_memory:
        return "memory"
    return str(settings.data_dir / service.data_file)
