"""The security a user's spec declares, as a mock can keep it: credentials of the declared kind
are needed, and any such credentials pass.

A mock cannot know which passwords, tokens or keys are good, and a client under test should
not need real ones; what it can check is that the client sends credentials at all, where the
operation says they go. A request to an operation whose security it does not satisfy in any
way (no ``Authorization: Basic ...`` for HTTP basic, no ``Bearer`` token for bearer, OAuth 2
or OpenID Connect, no key in the named header, query parameter or cookie for an API key) gets
a 401, in the body the operation declares for it.
"""

from __future__ import annotations

import http.cookies
import urllib.parse
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from cms_mock.errors import ApiError
from cms_mock.openapi.routes import SpecRoutes

Requirement = list[dict[str, Any]]
"""The schemes one security requirement names, all of which a request must satisfy."""


class CredentialsGuard:
    """Answers 401 for a request that carries none of the credentials its operation's security
    asks for (``spec``: the user's spec, its security schemes; ``routes``: its paths)."""

    def __init__(self, app: ASGIApp, spec: dict[str, Any], routes: SpecRoutes) -> None:
        self.app = app
        self.routes = routes
        schemes = spec.get("components", {}).get("securitySchemes", {})
        self.required: dict[int, list[Requirement]] = {}
        for item in spec.get("paths", {}).values():
            for operation in item.values():
                if isinstance(operation, dict) and "responses" in operation:
                    requirements = [[schemes.get(name, {}) for name in requirement] for requirement in operation.get("security", spec.get("security", []))]
                    if requirements and all(requirements):  # an empty requirement ({}) makes security optional
                        self.required[id(operation)] = requirements

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.required:
            found = self.routes.find(self.routes.canonical(scope["path"]))
            operation = found.operation(scope["method"]) if found else None
            requirements = self.required.get(id(operation)) if operation is not None else None
            if requirements and not any(all(_carries(scope, scheme) for scheme in requirement) for requirement in requirements):
                raise ApiError(_missing(requirements[0]), status=401, headers={"WWW-Authenticate": _wanted(requirements[0][0])[1]})
        await self.app(scope, receive, send)


def _carries(scope: Scope, scheme: dict[str, Any]) -> bool:
    """Whether the request carries credentials of ``scheme``'s kind, where it says they go."""
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
    kind = scheme.get("type")
    if kind == "apiKey":
        name = str(scheme.get("name", ""))
        where = scheme.get("in")
        if where == "header":
            return bool(headers.get(name.lower()))
        if where == "query":
            return bool(urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name))
        cookies = http.cookies.SimpleCookie()
        cookies.load(headers.get("cookie", ""))
        return name in cookies
    scheme_name = "bearer" if kind in ("oauth2", "openIdConnect") else str(scheme.get("scheme", "")).lower()
    given, _, value = headers.get("authorization", "").partition(" ")
    return given.lower() == scheme_name and bool(value.strip())


def _missing(requirement: Requirement) -> str:
    wanted = " and ".join(_wanted(scheme)[0] for scheme in requirement)
    return f"This operation needs credentials: {wanted} (any value is accepted by this mock)"


def _wanted(scheme: dict[str, Any]) -> tuple[str, str]:
    """What ``scheme`` wants, in words and as the ``WWW-Authenticate`` challenge of a 401 (RFC 9110)."""
    if scheme.get("type") == "apiKey":
        return f"an API key in the {scheme.get('in')} {scheme.get('name')!r}", f'ApiKey {scheme.get("in")}="{scheme.get("name")}"'
    if scheme.get("type") in ("oauth2", "openIdConnect"):
        return "a Bearer token in Authorization", 'Bearer realm="cms-mock"'
    name = str(scheme.get("scheme", "")).capitalize()
    return f"Authorization: {name} ...", f'{name} realm="cms-mock"'
