"""The specs, read for tests: their operations, what each may answer, and their schemas checked by
a validator we did not write.

``jsonschema_rs`` (Rust, ECMA-262 regular expressions) judges bodies, so a test agrees with
what a client validating the spec would say, not with the server's own validator.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs
import yaml
from connexion.json_schema import resolve_refs

from tests.support import ROOT

SPECS = {"cms": "openapi.yaml", "profile": "profile-openapi.yaml"}
METHODS = ("get", "put", "post", "delete", "patch")


def load(spec: str) -> dict[str, Any]:
    """A service's spec (``spec`` a key of ``SPECS``) or any spec file's (its name), with every ``$ref`` resolved."""
    with open(ROOT / SPECS.get(spec, spec), encoding="utf-8") as handle:
        return resolve_refs(yaml.safe_load(handle))  # type: ignore[no-any-return]


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """``(method, path, operation, path item)`` for every declared operation."""
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method], item


def problems(schema: dict[str, Any], instance: Any) -> list[str]:
    """Why ``instance`` breaks ``schema``, as a draft-4 validator with ECMA-262 patterns reads it
    (OpenAPI 3.0's ``nullable`` read as a ``null`` type, as OpenAPI means it)."""
    validator = jsonschema_rs.Draft4Validator(_nullable(schema))
    return [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(instance)]


def _nullable(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _nullable(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") and "type" in node:
        converted["type"] = [node["type"], "null"]
    return converted


def example_path(path: str, item: dict[str, Any], operation: dict[str, Any]) -> str:
    """``path`` with each parameter replaced by its schema's example (a record the samples hold)."""
    for parameter in [*item.get("parameters", []), *operation.get("parameters", [])]:
        if parameter["in"] == "path":
            path = path.replace("{" + parameter["name"] + "}", str(parameter["schema"]["example"]))
    return path


class Contract:
    """Which declared operation a request reaches (aliases included), and what it may answer."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.spec = spec = load(service)
        self.templates = []
        self.aliases = {}
        for path, item in spec["paths"].items():
            regex = re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$")
            self.templates.append((regex, item))
            self.aliases.update(dict.fromkeys(item.get("x-aliases", []), path))
        self.error_schema = spec["components"]["schemas"]["ErrorMessage"]
        self.listing, listed = next((p, op) for m, p, op, _ in operations(spec) if m == "GET" and "{" not in p and "array" in str(op["responses"]["200"]))
        self.listing_schema = listed["responses"]["200"]["content"]["application/json"]["schema"]

    def declared(self, method: str, path: str) -> bool:
        """Whether ``method path`` is a declared operation under its declared path (no alias)."""
        item = next((item for regex, item in self.templates if regex.match(path)), None)
        return item is not None and method.lower() in item

    def item(self, path: str) -> dict[str, Any] | None:
        path = self.aliases.get(path, path)
        return next((item for regex, item in self.templates if regex.match(path)), None)

    def violations(self, method: str, path: str, response: httpx.Response) -> list[str]:
        item = self.item(path.split("?")[0])
        if item is None:
            return self._error_violations(response, 404)
        operation = item.get(method.lower())
        if operation is None:
            methods = [m.upper() for m in METHODS if m in item] + (["HEAD"] if "get" in item else [])
            allowed = response.headers.get("allow", "")
            return self._error_violations(response, 405) + ([] if sorted(allowed.split(", ")) == sorted(methods) else [f"Allow {allowed!r}"])
        declared = operation["responses"].get(str(response.status_code))
        if declared is None:
            return [f"status {response.status_code} is not declared ({sorted(operation['responses'])}): {response.text[:200]}"]
        missing = [name for name, header in declared.get("headers", {}).items() if header.get("required") and name not in response.headers]
        if missing:
            return [f"{response.status_code} lacks its declared headers {missing}"]
        content = declared.get("content", {}).get("application/json")
        if content is None:
            return [] if response.content == b"" else [f"{response.status_code} declares no body but has {response.content[:100]!r}"]
        if not response.headers.get("content-type", "").startswith("application/json"):
            return [f"content type {response.headers.get('content-type')!r} is not application/json"]
        return problems(content["schema"], response.json())

    def _error_violations(self, response: httpx.Response, status: int) -> list[str]:
        if response.status_code != status:
            return [f"expected {status}, got {response.status_code} {response.headers.get('location', '')} {response.text[:200]}"]
        return problems(self.error_schema, response.json())
