"""The spec's paths, for the few questions starlette's router cannot answer from its routes."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from cms_mock.errors import InvalidParameter

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_DIGITS = re.compile(r"[+-]?[0-9]{1,19}")
_INT64 = range(-(2**63), 2**63)
"""An integer path parameter is an int64 (the specs' ``format``): longer digit strings are
refused before starlette converts them with ``int()``, which raises past 4,300 digits."""


@dataclasses.dataclass(frozen=True)
class _Route:
    regex: re.Pattern[str]
    typed: dict[str, str]
    operations: dict[str, dict[str, Any]]
    secured: frozenset[str]


class SpecRoutes:
    """Every path template of a spec, with its typed parameters, operations, security and aliases.

    Starlette matches an ``integer`` path parameter with a regex, so ``/customers/abc`` would
    match no route at all: here every segment matches, and a value that is no integer is a
    400 for the parameter, not a 404. A 405's ``Allow`` header lists every method the spec
    declares for the path. The API key guard must know which operations the spec secures,
    and the request gate which paths exist, which operations take a body, and which paths
    are another name of a declared one (``x-aliases``).
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        default_security = spec.get("security", [])
        self._routes = []
        self._aliases: dict[str, str] = {}
        for template, item in spec.get("paths", {}).items():
            regex = re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(template))
            typed = {p["name"]: p["schema"]["type"] for p in item.get("parameters", []) if p.get("in") == "path" and p["schema"].get("type") != "string"}
            operations = {m.upper(): item[m] for m in _METHODS if m in item}
            if "GET" in operations:
                operations["HEAD"] = operations["GET"]
            secured = frozenset(m for m, op in operations.items() if any(op.get("security", default_security)))
            self._routes.append(_Route(re.compile(f"^{regex}$"), typed, operations, secured))
            self._aliases.update(dict.fromkeys(item.get("x-aliases", []), template))

    def _find(self, path: str) -> tuple[_Route, re.Match[str]] | None:
        for route in self._routes:
            match = route.regex.match(path)
            if match:
                return route, match
        return None

    def canonical(self, path: str) -> str:
        """The declared path that ``path`` is another name of, or ``path`` itself."""
        return self._aliases.get(path, path)

    def known(self, path: str) -> bool:
        return self._find(path) is not None

    def operation(self, method: str, path: str) -> dict[str, Any] | None:
        found = self._find(path)
        return found[0].operations.get(method) if found else None

    def bad_parameter(self, path: str) -> InvalidParameter | None:
        """The error for a typed path parameter whose value is not of its type, if any."""
        found = self._find(path)
        if found is None:
            return None
        route, match = found
        for name, type_ in route.typed.items():
            value = match.group(name)
            if type_ == "integer" and not (_DIGITS.fullmatch(value) and int(value) in _INT64):
                shown = value if len(value) <= 40 else value[:40] + "..."
                return InvalidParameter(f"Invalid {name}: {shown!r} is not a valid integer")
        return None

    def allowed(self, path: str) -> str:
        found = self._find(path)
        return ", ".join(found[0].operations) if found else ""

    def secured(self, method: str, path: str) -> bool:
        """Whether the spec lets this operation be protected by a security scheme."""
        found = self._find(path)
        return found is not None and method in found[0].secured
