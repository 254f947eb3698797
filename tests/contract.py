"""The specs, read for tests: their operations, and their schemas checked by a validator we did not write.

``jsonschema_rs`` (Rust, ECMA-262 regular expressions) judges bodies, so a test agrees with
what a client validating the spec would say, not with the server's own validator.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml
from connexion.json_schema import resolve_refs

ROOT = Path(__file__).parent.parent
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
