"""Records to send and to store: one customer and one profile the API accepts, and N customers
with predictable ids (a data file for the JSON store here, rows for PostgreSQL in
``bench/postgres.py``), so load scripts can address any of them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from cms_mock.services import SERVICES
from cms_mock.stores.datafile import encode, render


def sample_customers() -> list[dict[str, Any]]:
    """The customers a new CMS store starts with: its spec's list example."""
    return SERVICES["cms"].rules.samples()


def sample_profiles() -> list[dict[str, Any]]:
    """The profiles a new profile store starts with: its spec's list example."""
    return SERVICES["profile"].rules.samples()


NEW_CUSTOMER = {
    "name": "Alice Johnson",
    "email": "alice@example.com",
    "phone": "+1-555-0200",
    "address": "789 Oak St, Boston, MA 02101",
    "company": "Manufacturing Co",
    "status": "active",
}

NEW_PROFILE = {
    "first_name": "Ann",
    "last_name": "Lee",
    "email": "ann@example.com",
    "phone_number": "+1-555-0300",
    "address": "1 Elm Street, Springfield",
    "date_of_birth": "1990-01-31",
}


def customer_id(index: int) -> str:
    """A valid UUID v4 built from a number: ``tests/support/crud.lua`` formats the same ids."""
    return f"00000000-0000-4000-8000-{index:012d}"


_EPOCH = dt.datetime(2026, 2, 1, 10)


def customer(index: int) -> dict[str, Any]:
    """The ``index``-th customer, with the timestamps in the seed's format, a second apart in
    creation order (sorting by them means something)."""
    stamp = (_EPOCH + dt.timedelta(seconds=index)).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return {
        "id": customer_id(index),
        "name": f"Customer {index}",
        "email": f"customer{index}@example.com",
        "phone": f"+1-555-{index % 10000:04d}",
        "address": f"{index} Benchmark Avenue, Springfield, IL 62701",
        "company": f"Company {index % 977}",
        "status": "active" if index % 5 else "inactive",
        "created_at": stamp,
        "updated_at": stamp,
    }


def write_customers(data_dir: Path, count: int) -> Path:
    """``customers.json`` with ``count`` customers, in the service's own file format."""
    data_dir.mkdir(parents=True, exist_ok=True)
    records = {}
    for index in range(count):
        record = customer(index)
        records[record["id"]] = encode(record)
    path = data_dir / "customers.json"
    path.write_bytes(b"".join(render(records)))
    return path
