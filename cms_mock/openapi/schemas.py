"""Schemas as a reader needs them: one object, whatever ``$ref`` and ``allOf`` they were written with."""

from __future__ import annotations

from typing import Any

from cms_mock.openapi.routes import resolved


def merged(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$ref`` followed and its ``allOf`` parts' properties and requirements
    joined (``Pet: allOf [NewPet, {id}]`` reads as one object with ``id``, ``name`` and ``tag``)."""
    schema = resolved(spec, schema)
    if "allOf" not in schema:
        return schema
    joined: dict[str, Any] = {key: value for key, value in schema.items() if key != "allOf"}
    properties: dict[str, Any] = dict(joined.get("properties", {}))
    required: list[str] = list(joined.get("required", []))
    for part in schema["allOf"]:
        part = merged(spec, part)
        properties.update(part.get("properties", {}))
        required.extend(name for name in part.get("required", []) if name not in required)
        if "type" in part:
            joined.setdefault("type", part["type"])
    return {**joined, "properties": properties, "required": required}


def named(spec: dict[str, Any], name: str) -> dict[str, Any]:
    """The ``components/schemas`` entry ``name``, merged."""
    return merged(spec, spec["components"]["schemas"][name])


def kind(schema: dict[str, Any]) -> str | None:
    """The schema's type: the one that is not ``null`` in 3.1's lists, ``object`` when it only has properties."""
    declared = schema.get("type")
    if isinstance(declared, list):
        declared = next((k for k in declared if k != "null"), None)
    if declared is None and "properties" in schema:
        return "object"
    return declared if isinstance(declared, str) else None
