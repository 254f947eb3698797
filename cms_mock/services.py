"""The services this engine serves: each is a spec, read once for what it declares.

A service is its spec file: the records (``openapi.resources``), and, in the spec's top-level
``x-cms-mock``, what the paths cannot say: ``service`` (its name: ``SERVICE``, the PostgreSQL
table, the metrics' label) and ``errors`` (how its error bodies are written: ``detail``,
FastAPI's ``{"detail": ...}``, or ``error``, ``{"error": ...}``). Its default port is the first
``servers`` URL's.

The built-in services are the specs at the repository root (bundled in the wheel under
``cms_mock/specs``): adding one is adding its spec to ``BUILT_IN``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from cms_mock.http.error_responses import DetailDialect, Dialect, ErrorDialect
from cms_mock.openapi.collection import Collection
from cms_mock.openapi.resources import EXTENSION, Resource, SpecProblem, find
from cms_mock.settings import SettingsError
from cms_mock.stores.records import IdPolicy, RecordRules

_PACKAGE = Path(__file__).resolve().parent

BUILT_IN = ("openapi.yaml", "profile-openapi.yaml")


def spec_path(file_name: str) -> Path:
    """A spec: bundled in the wheel under ``cms_mock/specs``, at the repository root in a checkout."""
    bundled = _PACKAGE / "specs" / file_name
    return bundled if bundled.exists() else _PACKAGE.parent / file_name


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser where PyYAML was built with it (its wheels are): the same safe loading, and
every app, server start and test reads a spec."""


def load_spec(file_name: str) -> dict[str, Any]:
    return read_spec(spec_path(file_name))


def read_spec(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_YAML_LOADER)  # type: ignore[no-any-return]


_DIALECTS: dict[str, tuple[Dialect, str]] = {"detail": (DetailDialect(), "FieldProblems"), "error": (ErrorDialect(), "ErrorMessage")}
"""Each error dialect, and the schema of the control plane's 422 body in it: ``admin-openapi.yaml``'s
``FieldProblems`` (FastAPI's list, indices included) or the service's own ``ErrorMessage``."""


@dataclasses.dataclass(frozen=True)
class Service:
    key: str
    path: Path
    resource: Resource
    dialect: Dialect
    validation_schema: str
    """The schema of the control plane's 422 body in this service's dialect."""
    default_port: int
    rules: RecordRules

    @classmethod
    def read(cls, path: Path) -> Service:
        """The service ``path``'s spec declares; a ``SpecProblem`` saying what it lacks."""
        spec = read_spec(path)
        declared = spec.get(EXTENSION, {})
        resources = find(spec)
        if len(resources) != 1:
            raise SpecProblem("#/paths", f"a service serves one resource (a collection and its item paths), found {len(resources)}")
        resource = resources[0]
        errors = declared.get("errors", "detail")
        if errors not in _DIALECTS:
            raise SpecProblem(f"#/{EXTENSION}/errors", f"must be one of {', '.join(_DIALECTS)}, not {errors!r}")
        dialect, validation_schema = _DIALECTS[errors]
        start = resource.start_records(spec)
        return cls(
            key=str(declared.get("service", path.name.removesuffix(".yaml").removesuffix(".json"))),
            path=path,
            resource=resource,
            dialect=dialect,
            validation_schema=validation_schema,
            default_port=_port(spec),
            rules=RecordRules(_id_policy(spec, resource), lambda: copy.deepcopy(start), resource.noun),
        )

    @property
    def data_file(self) -> str:
        """The JSON store's file in ``DATA_DIR``."""
        return self.resource.data_file

    @property
    def record_schema(self) -> str:
        """The spec's schema of a stored record: what ``cms-mock import`` checks each record against."""
        return self.resource.record_schema

    @property
    def list_operation(self) -> str:
        """The operation that lists the records, with the query parameters ``collection.Collection`` reads."""
        return self.resource.list_operation

    def load_spec(self) -> dict[str, Any]:
        """The spec, read now: each caller gets its own to change."""
        return read_spec(self.path)

    @functools.cached_property
    def collection(self) -> Collection:
        """What the list's query parameters mean, read from the spec once per process (the app,
        the store's columns and the command line ask the same question)."""
        return Collection.of(self.load_spec(), self.list_operation, self.record_schema)

    @property
    def table(self) -> str:
        """The PostgreSQL store's table."""
        return f"{self.key}_records"


def _port(spec: dict[str, Any]) -> int:
    """The first ``servers`` URL's port; 8080 when it names none (its scheme's, 80 or 443, is not for a mock)."""
    url = urllib.parse.urlsplit(spec.get("servers", [{}])[0].get("url", ""))
    return url.port or 8080


def _id_policy(spec: dict[str, Any], resource: Resource) -> IdPolicy:
    """Integer ids are counted; any other kind is a UUID v4 string."""
    record = spec["components"]["schemas"][resource.record_schema]
    return "int" if record["properties"].get("id", {}).get("type") == "integer" else "uuid4"


SERVICES = {service.key: service for service in (Service.read(spec_path(name)) for name in BUILT_IN)}


def service(key: str) -> Service:
    """The service named ``key``; a ``SettingsError`` naming the known ones otherwise."""
    try:
        return SERVICES[key]
    except KeyError:
        raise SettingsError(f"SERVICE must be one of {', '.join(SERVICES)}, not {key!r}") from None
