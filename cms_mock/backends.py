"""Which store a service's records live in: the one place a backend is chosen from settings."""

from __future__ import annotations

from cms_mock.services import Service
from cms_mock.settings import Settings
from cms_mock.store import RecordStore
from cms_mock.store_file import FileStore
from cms_mock.store_memory import MemoryStore
from cms_mock.store_postgres import PostgresStore


def make_store(settings: Settings, service: Service) -> RecordStore:
    """PostgreSQL with ``DATABASE_URL``, memory with ``--in-memory``, else the JSON file."""
    if settings.database_url:
        return PostgresStore(settings.database_url, service.table, service.rules, timeout=settings.database_timeout)
    if settings.in_memory:
        return MemoryStore(service.rules)
    return FileStore(settings.data_dir / service.data_file, service.rules)


def where(settings: Settings, service: Service) -> str:
    """Where the records live, for the log (a database's password is not shown)."""
    if settings.database_url:
        return f"table {service.table} of {settings.database_shown}"
    if settings.in_memory:
        return "memory"
    return str(settings.data_dir / service.data_file)
