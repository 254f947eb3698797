"""The services this engine serves: each is a spec, read once for what it declares.

A service is its spec file: the records (``openapi.resources``), and, in the spec's top-level
``x-cms-mock``, what the paths cannot say: ``service`` (its name: ``SERVICE``, the PostgreSQL
table, the metrics' label) and ``errors`` (how its error bodies are written: ``detail``,
FastAPI's ``{"detail": ...}``, or ``error``, ``{"error": ...}``). Its default port is the first
``servers`` URL's. A spec that declares no ``errors`` gets the bodies each operation declares.

The built-in services are the specs at the repository root (bundled in the wheel under
``cms_mock/specs``): adding one is adding its spec to ``BUILT_IN``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
import urllib.parse
from pathlib import Path
from typing import Any

import yaml
from connexion.exceptions import InvalidSpecification
from connexion.spec import OpenAPISpecification

from cms_mock.http.error_responses import DetailDialect, Dialect, ErrorDialect
from cms_mock.openapi import additions, versions
from cms_mock.openapi.collection import Collection
from cms_mock.openapi.resources import EXTENSION, Resource, SpecProblem, find
from cms_mock.openapi.routes import server_url
from cms_mock.openapi.schemas import merged, named
from cms_mock.settings import Settings, SettingsError
from cms_mock.stores.records import TIMES, RecordRules

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
    """The spec at ``path``, its response codes as the strings they are (YAML reads an unquoted
    ``200:`` as a number)."""
    with open(path, encoding="utf-8") as handle:
        spec = yaml.load(handle, Loader=_YAML_LOADER)
    for item in spec.get("paths", {}).values() if isinstance(spec, dict) and isinstance(spec.get("paths"), dict) else ():
        for operation in item.values() if isinstance(item, dict) else ():
            if isinstance(operation, dict) and isinstance(operation.get("responses"), dict):
                operation["responses"] = {str(code): response for code, response in operation["responses"].items()}
    return spec  # type: ignore[no-any-return]


def _checked(spec: Any) -> dict[str, Any]:
    """``spec`` once it is known to be an OpenAPI 3.0 or 3.1 document connexion can bind; a
    ``SpecProblem`` naming what breaks the OpenAPI schema otherwise."""
    if not isinstance(spec, dict) or not str(spec.get("openapi", "")).startswith(("3.0.", "3.1.")):
        found = (spec.get("openapi", spec.get("swagger", "no version")) if isinstance(spec, dict) else "empty") if spec else "empty"
        raise SpecProblem("#/openapi", f"cms-mock serves OpenAPI 3.0 and 3.1 documents (openapi: '3.0.3' or '3.1.0'); this one is {found!r}")
    server = (spec.get("servers") or [{}])[0]
    for name in re.findall(r"\{([^}]*)\}", str(server.get("url", ""))):
        if "default" not in server.get("variables", {}).get(name, {}):
            raise SpecProblem("#/servers/0/url", f"names the variable {{{name}}}, which servers[0].variables does not give a default")
    try:
        OpenAPISpecification.from_dict(versions.for_connexion(spec))
    except InvalidSpecification as exc:
        where = "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in getattr(exc, "path", ()) or ())
        raise SpecProblem(f"#/{where}", f"breaks the OpenAPI schema: {str(exc).splitlines()[0]}") from None
    return spec


ERRORS = {
    "detail": 'FastAPI\'s {"detail": message}, a 422 listing each problem',
    "error": '{"error": message}, a 400 for a body that is not JSON',
    "spec": "the body each operation declares for the status; problem details where it declares none",
}
"""What each error dialect writes, in words (``cms-mock check``)."""

_DIALECTS: dict[str, tuple[Dialect | None, str | None]] = {
    "detail": (DetailDialect(), "FieldProblems"),
    "error": (ErrorDialect(), "ErrorMessage"),
    "spec": (None, None),
}
"""Each error dialect, and the schema of the control plane's 422 body in it: ``admin-openapi.yaml``'s
``FieldProblems`` (FastAPI's list, indices included) or the service's own ``ErrorMessage``;
``spec`` (the default): the bodies each operation declares, and problem details for the control plane."""


@dataclasses.dataclass(frozen=True)
class Service:
    key: str
    path: Path
    resource: Resource
    errors: str
    """The error dialect's name, a key of ``ERRORS``."""
    dialect: Dialect | None
    """How errors are written; None: as each operation of the spec declares them."""
    validation_schema: str | None
    """The schema of the control plane's 422 body in this service's dialect (None: problem details)."""
    default_port: int
    rules: RecordRules
    built_in: bool = False
    """One of ``BUILT_IN``, whose spec declares every answer (no additions) and words every pattern."""

    @classmethod
    def read(cls, path: Path, built_in: bool = False) -> Service:
        """The service ``path``'s spec declares; a ``SpecProblem`` saying what it lacks. A
        built-in spec is checked by the tests, not at every start."""
        spec = read_spec(path) if built_in else _checked(read_spec(path))
        declared = spec.get(EXTENSION, {})
        if not isinstance(declared, dict):
            raise SpecProblem(f"#/{EXTENSION}", "must be a mapping, such as {service: name, errors: detail}")
        resources = find(spec)
        if not resources:
            raise SpecProblem("#/paths", "no resource found: a resource is a path with a GET and one path below it with a GET, such as /pets and /pets/{petId}")
        if len(resources) > 1:
            found = ", ".join(resource.collection for resource in resources)
            raise SpecProblem("#/paths", f"{len(resources)} resources found ({found}): one resource per spec is served")
        resource = resources[0]
        errors = declared.get("errors", "spec")
        if errors not in _DIALECTS:
            raise SpecProblem(f"#/{EXTENSION}/errors", f"must be one of {', '.join(_DIALECTS)}, not {errors!r}")
        dialect, validation_schema = _DIALECTS[errors]
        if dialect is not None and "ErrorMessage" not in spec.get("components", {}).get("schemas", {}):
            raise SpecProblem("#/components/schemas", f"errors: {errors} needs an ErrorMessage schema: the body of every error it writes")
        start = resource.start_records(spec)
        record = named(spec, resource.record_schema).get("properties", {})
        id_field = resource.id_field(record)
        if id_field not in record:
            pointer = f"#/components/schemas/{resource.record_schema}/properties"
            named_by = f"{resource.id_parameter!r} (the item path's parameter) nor " if resource.id_parameter != id_field else ""
            declare = f"x-cms-mock: {{id-field: NAME}} on {resource.collection}"
            raise SpecProblem(pointer, f"has neither {named_by}{id_field!r} to hold a record's id: name the field that does with {declare}")
        return cls(
            key=str(declared.get("service", re.sub(r"[^a-z0-9]+", "_", path.stem.lower()).strip("_") or "api")),
            path=path,
            resource=resource,
            errors=errors,
            dialect=dialect,
            validation_schema=validation_schema,
            default_port=_port(spec),
            built_in=built_in,
            rules=RecordRules(
                "int" if record.get(id_field, {}).get("type") == "integer" else "uuid4",  # integers are counted; any other id is a UUID v4
                lambda: copy.deepcopy(start),
                resource.noun,
                stamped=set(TIMES) <= record.keys(),
                id_field=id_field,
                zone="Z" if not built_in and any(merged(spec, record.get(name, {})).get("format") == "date-time" for name in TIMES) else "",
            ),
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

    def served_spec(self) -> dict[str, Any]:
        """The document this service serves, routes and validates by: its spec, and for a user's
        what the engine answers beyond it (``openapi.additions``)."""
        return additions.served(self.load_spec(), None if self.built_in else self.resource)

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
    """The first ``servers`` URL's port (its variables at their defaults); 8080 when it names
    none (its scheme's, 80 or 443, is not for a mock)."""
    return urllib.parse.urlsplit(server_url(spec)).port or 8080


SERVICES = {service.key: service for service in (Service.read(spec_path(name), built_in=True) for name in BUILT_IN)}


@functools.cache
def _user_spec(path: Path) -> Service:
    """The service of a user's spec, read once per process; a ``SettingsError`` saying why it cannot be served."""
    try:
        return Service.read(path)
    except OSError as exc:
        raise SettingsError(f"SPEC {path} cannot be read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"SPEC {path} is not YAML or JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"SPEC {path} is not UTF-8 text: {exc}") from None
    except SpecProblem as exc:
        raise SettingsError(f"SPEC {path} cannot be served: {exc}") from None
    except Exception as exc:  # a document read otherwise than foreseen (a $ref to nowhere, a port out of range): refused all the same
        raise SettingsError(f"SPEC {path} cannot be served: {type(exc).__name__}: {exc}") from None


def served(settings: Settings) -> Service:
    """The service ``settings`` serve: their ``SPEC`` file's, or the built-in one ``SERVICE`` names."""
    return service(settings.service) if settings.spec is None else _user_spec(settings.spec.resolve())


def service(key: str) -> Service:
    """The service named ``key``; a ``SettingsError`` naming the known ones otherwise."""
    try:
        return SERVICES[key]
    except KeyError:
        raise SettingsError(f"SERVICE must be one of {', '.join(SERVICES)}, not {key!r}") from None
