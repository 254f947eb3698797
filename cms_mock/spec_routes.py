"""The spec's paths, for the few questions starlette's router cannot answer from its routes."""

from __future__ import annotations

import re
from typing import Any

from cms_mock.errors import InvalidParameter

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


class SpecRoutes:
    """Every path template of a spec, with its typed parameters, methods and security.

    An ``integer`` path parameter is matched with a regex, so ``/customers/abc`` matches no
    route at all: that is a 400 for the parameter, not a 404. A 405's ``Allow`` header must
    list every method the spec declares for the path, not one route's. And the API key guard
    must know which operations the spec secures.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        default_security = spec.get("security", [])
        self._routes = []
        for template, item in spec.get("paths", {}).items():
            regex = re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(template))
            typed = {p["name"]: p["schema"]["type"] for p in item.get("parameters", []) if p.get("in") == "path" and p["schema"].get("type") != "string"}
            methods = {m.upper(): item[m] for m in _METHODS if m in item}
            if "GET" in methods:
                methods["HEAD"] = methods["GET"]
            secured = {m for m, op in methods.items() if any(op.get("security", default_security))}
            self._routes.append((re.compile(f"^{regex}$"), typed, list(methods), secured))

    def _find(self, path: str) -> tuple[re.Match[str], dict[str, str], list[str], set[str]] | None:
        for regex, typed, methods, secured in self._routes:
            match = regex.match(path)
            if match:
                return match, typed, methods, secured
        return None

    def bad_parameter(self, path: str) -> InvalidParameter | None:
        found = self._find(path)
        if found is None or not found[1]:
            return None
        match, typed, _, _ = found
        name, type_ = next(iter(typed.items()))
        return InvalidParameter(f"Invalid {name}: {match.group(name)!r} is not a valid {type_}")

    def allowed(self, path: str) -> str | None:
        found = self._find(path)
        return ", ".join(found[2]) if found else None

    def secured(self, method: str, path: str) -> bool:
        """Whether the spec lets this operation be protected by a security scheme."""
        found = self._find(path)
        return found is not None and method in found[3]
