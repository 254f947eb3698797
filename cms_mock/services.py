"""The contracts this engine serves: each is a spec, its records' rules, a dialect and a port.

Adding a service is a spec file at the repository root, a handlers module and an entry here;
nothing else changes (settings, the command line's flags, the store, packaging and the image
read this table).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import yaml

from cms_mock import samples
from cms_mock.http.error_responses import DetailDialect, Dialect, ErrorDialect
from cms_mock.openapi.collection import Collection
from cms_mock.settings import SettingsError
from cms_mock.stores.records import RecordRules

_PACKAGE = Path(__file__).resolve().parent


def spec_path(file_name: str) -> Path:
    """A spec: bundled in the wheel under ``cms_mock/specs``, at the repository root in a checkout."""
    bundled = _PACKAGE / "specs" / file_name
    return bundled if bundled.exists() else _PACKAGE.parent / file_name


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser where PyYAML was built with it (its wheels are): the same safe loading, and
every app, server start and test reads a spec."""


def load_spec(file_name: str) -> dict[str, Any]:
    with open(spec_path(file_name), encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_YAML_LOADER)  # type: ignore[no-any-return]


@dataclasses.dataclass(frozen=True)
class Service:
    key: str
    spec_file: str
    data_file: str
    """The JSON store's file in ``DATA_DIR``."""
    default_port: int
    rules: RecordRules
    dialect: Dialect
    record_schema: str
    """The spec's schema of a stored record: what ``cms-mock import`` checks each record against."""
    validation_schema: str
    """The schema of the control plane's 422 body in this service's dialect: ``admin-openapi.yaml``'s
    ``FieldProblems`` (FastAPI's list, indices included) or the service's own ``ErrorMessage``."""
    list_operation: str
    """The operation that lists the records, with the query parameters ``collection.Collection`` reads."""

    @property
    def spec_path(self) -> Path:
        return spec_path(self.spec_file)

    def load_spec(self) -> dict[str, Any]:
        return load_spec(self.spec_file)

    @functools.cached_property
    def collection(self) -> Collection:
        """What the list's query parameters mean, read from the spec once per process (the app,
        the store's columns and the command line ask the same question)."""
        return Collection.of(self.load_spec(), self.list_operation, self.record_schema)

    @property
    def table(self) -> str:
        """The PostgreSQL store's table."""
        return f"{self.key}_records"


SERVICES = {
    "cms": Service(
        "cms", "openapi.yaml", "customers.json", 3001, RecordRules("uuid4", samples.customers), DetailDialect(), "Customer", "FieldProblems", "listCustomers"
    ),
    "profile": Service(
        "profile",
        "profile-openapi.yaml",
        "profiles.json",
        8000,
        RecordRules("int", samples.profiles),
        ErrorDialect(),
        "Profile",
        "ErrorMessage",
        "listProfiles",
    ),
}


def service(key: str) -> Service:
    """The service named ``key``; a ``SettingsError`` naming the known ones otherwise."""
    try:
        return SERVICES[key]
    except KeyError:
        raise SettingsError(f"SERVICE must be one of {', '.join(SERVICES)}, not {key!r}") from None
