"""The spec's paths, for the questions starlette's router cannot answer from its routes."""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from typing import Any

from cms_mock.errors import InvalidBody, InvalidParameter
from cms_mock.openapi.patterns import ecma_regex, pattern_problem

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
"""The HTTP methods a path item may declare an operation for."""
_INTEGER = re.compile(r"[+-]?[0-9]{1,100}")
_INT64 = (-(2**63), 2**63 - 1)


def resolved(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node``, or what its local ``$ref`` (``#/components/...``) names."""
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def server_url(spec: dict[str, Any]) -> str:
    """The first ``servers`` URL, its variables at their defaults (``""`` for none)."""
    server = (spec.get("servers") or [{}])[0]
    url = str(server.get("url", ""))
    for name, variable in server.get("variables", {}).items():
        url = url.replace(f"{{{name}}}", str(variable.get("default", "")))
    return url


def base_path(spec: dict[str, Any]) -> str:
    """Where the API's paths begin on the server: the path of the first ``servers`` URL, as
    connexion routes them; ``""`` for none or ``/``."""
    return urllib.parse.urlsplit(server_url(spec)).path.rstrip("/")


def prefixed(spec: dict[str, Any], base: str) -> dict[str, Any]:
    """``spec`` with every path (and alias) under ``base``: the paths a request names."""
    if not base:
        return spec
    paths = {base + template: {**item, "x-aliases": [base + alias for alias in item.get("x-aliases", [])]} for template, item in spec["paths"].items()}
    return {**spec, "paths": paths}


@dataclasses.dataclass(frozen=True)
class _Route:
    template: str
    regex: re.Pattern[str]
    integers: dict[str, dict[str, Any]]
    patterns: dict[str, dict[str, Any]]
    operations: dict[str, dict[str, Any]]
    secured: frozenset[str]


@dataclasses.dataclass(frozen=True)
class Found:
    """A declared path a request's path matched, with the values of its parameters."""

    route: _Route
    values: dict[str, str]

    def operation(self, method: str) -> dict[str, Any] | None:
        return self.route.operations.get(method)

    @property
    def allowed(self) -> str:
        """The ``Allow`` header of a 405: every method the spec declares for the path."""
        return ", ".join(self.route.operations)

    def bad_parameter(self) -> InvalidParameter | InvalidBody | None:
        """The error for a path parameter that its schema refuses, if any: an integer (a 400),
        or a string that does not match its ``pattern`` (a 422, like any value that breaks a rule).

        Judged here, before starlette converts the value with ``int()`` (which raises past
        4,300 digits) and before connexion checks it: one place, one wording, for every way
        an id can be wrong (not a number, too large for an int64, below the minimum).
        """
        for name, schema in self.route.integers.items():
            value = self.values[name]
            shown = value if len(value) <= 40 else value[:40] + "..."
            if not _INTEGER.fullmatch(value):
                return InvalidParameter(f"Invalid {name}: {shown!r} is not a valid integer")
            number = int(value)
            if not _INT64[0] <= number <= _INT64[1]:
                return InvalidParameter(f"Invalid {name}: {shown!r} is out of range (a 64-bit integer)")
            if number < schema.get("minimum", _INT64[0]):
                return InvalidParameter(f"Invalid {name}: {shown!r} must be at least {schema['minimum']}")
            if number > schema.get("maximum", _INT64[1]):
                return InvalidParameter(f"Invalid {name}: {shown!r} must be at most {schema['maximum']}")
        for name, schema in self.route.patterns.items():
            if ecma_regex(schema["pattern"]).find(self.values[name]) is None:
                return InvalidBody([pattern_problem(("path", name), schema)])
        return None


class SpecRoutes:
    """Every path template of a spec, with its integer parameters, operations, security and aliases.

    Every segment matches a parameter here (starlette would match an integer parameter with a
    regex, so ``/customers/abc`` would be a 404 rather than a 400 for the parameter). The API
    key guard asks which operations the spec secures; the request gate which paths exist, which
    methods each declares, which operations take a body, and which paths are another name of a
    declared one (``x-aliases``).
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        default_security = spec.get("security", [])
        self._routes = []
        self._aliases: dict[str, str] = {}
        for template, item in spec.get("paths", {}).items():
            regex = re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(template))
            parameters = [p for p in item.get("parameters", []) if p.get("in") == "path"]
            integers = {p["name"]: p["schema"] for p in parameters if p["schema"].get("type") == "integer"}
            patterns = {p["name"]: p["schema"] for p in parameters if p["schema"].get("type") == "string" and "pattern" in p["schema"]}
            operations = {m.upper(): item[m] for m in METHODS if m in item}
            if "GET" in operations:
                operations.setdefault("HEAD", operations["GET"])
            secured = frozenset(m for m, op in operations.items() if any(op.get("security", default_security)))
            self._routes.append(_Route(template, re.compile(f"^{regex}$"), integers, patterns, operations, secured))
            self._aliases.update(dict.fromkeys(item.get("x-aliases", []), template))

    def find(self, path: str) -> Found | None:
        """The declared path ``path`` names, or None."""
        for route in self._routes:
            match = route.regex.match(path)
            if match:
                return Found(route, match.groupdict())
        return None

    def canonical(self, path: str) -> str:
        """The declared path that ``path`` is another name of, or ``path`` itself."""
        return self._aliases.get(path, path)

    def secured(self, method: str, path: str) -> bool:
        """Whether the spec lets this operation be protected by a security scheme."""
        found = self.find(path)
        return found is not None and method in found.route.secured
