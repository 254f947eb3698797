"""OpenAPI 3.1 read through connexion, which knows only 3.0.

Connexion binds operations and parameters from a 3.0 view of a 3.1 spec (``for_connexion``),
made only for that: the served document is the spec as written, and a request body is judged
against its schema as written, in JSON Schema 2020-12. The view keeps that schema inside the
converted one, under ``SOURCE``: as JSON text (connexion resolves every ``$ref`` it walks
through, by 3.0's rules), whole (the spec's schemas in its ``$defs``, its references to them
pointing there). What 3.0 cannot say is left out of the view: ``prefixItems``,
``if``/``then``/``else``, ``unevaluatedProperties`` and the like constrain bodies (through
their source) but not parameters.
"""

from __future__ import annotations

import copy
import json
from typing import Any

SOURCE = "x-cms-mock-json-schema-2020-12"
"""Where the view keeps a request body's schema as the 3.1 spec wrote it."""
_WRITTEN = "#/components/schemas/"

_SUBSCHEMA = ("items", "not", "additionalProperties")
_SUBSCHEMAS = ("allOf", "anyOf", "oneOf")
_DROPPED = frozenset(
    {
        "$schema", "$id", "$anchor", "$dynamicAnchor", "$dynamicRef", "$comment", "$defs", "$vocabulary",
        "prefixItems", "contains", "minContains", "maxContains", "unevaluatedItems", "unevaluatedProperties",
        "if", "then", "else", "dependentRequired", "dependentSchemas", "propertyNames", "patternProperties",
        "contentMediaType", "contentEncoding", "contentSchema", "examples",
    }
)  # fmt: skip


def is_31(spec: dict[str, Any]) -> bool:
    return str(spec.get("openapi", "")).startswith("3.1")


def for_connexion(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` as connexion can read it: itself for 3.0, a 3.0 view for 3.1 (a copy)."""
    if not is_31(spec):
        return spec
    defs = _as_written(spec.get("components", {}).get("schemas", {}))
    view: dict[str, Any] = _document(copy.deepcopy(spec), defs)
    view["openapi"] = "3.0.3"
    for key in ("webhooks", "jsonSchemaDialect"):
        view.pop(key, None)
    view.setdefault("paths", {})
    view["info"] = {key: value for key, value in view["info"].items() if key != "summary"}
    if "license" in view["info"]:
        view["info"]["license"] = {key: value for key, value in view["info"]["license"].items() if key != "identifier"}
    view.get("components", {}).pop("pathItems", None)
    return view


def _document(node: Any, defs: dict[str, Any], *, bodies: bool = False) -> Any:
    """Every schema under ``node`` converted; a request body's keeps its source (with ``defs``)."""
    if isinstance(node, list):
        return [_document(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {}
    for key, value in node.items():
        if key == "schema" and isinstance(value, dict):
            source = {**_as_written(value), "$defs": defs}
            converted[key] = {**_schema(value), SOURCE: json.dumps(source)} if bodies else _schema(value)
        elif key == "schemas" and isinstance(value, dict):
            converted[key] = {name: _schema(schema) for name, schema in value.items()}
        else:
            converted[key] = _document(value, defs, bodies=bodies or key in ("requestBody", "requestBodies"))
    return converted


def _as_written(node: Any) -> Any:
    """A schema as written, its references to the spec's schemas pointing at their copies in ``$defs``."""
    if isinstance(node, list):
        return [_as_written(item) for item in node]
    if not isinstance(node, dict):
        return node
    written = {key: _as_written(value) for key, value in node.items()}
    reference = written.get("$ref")
    if isinstance(reference, str) and reference.startswith(_WRITTEN):
        written["$ref"] = f"#/$defs/{reference.removeprefix(_WRITTEN)}"
    return written


def _schema(schema: Any) -> Any:
    """One 3.1 schema as 3.0 writes it."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROPPED or (key == "items" and isinstance(value, bool)):  # 3.0 has no boolean items (prefixItems' "no more")
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _schema(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA:
            out[key] = _schema(value)
        elif key in _SUBSCHEMAS and isinstance(value, list):
            out[key] = [_schema(sub) for sub in value]
        elif key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        else:
            out[key] = value
    if "examples" in schema and isinstance(schema["examples"], list) and schema["examples"] and "example" not in out:
        out["example"] = schema["examples"][0]
    return _typed(out)


def _typed(schema: dict[str, Any]) -> dict[str, Any]:
    """3.1's ``type: [string, "null"]`` as 3.0's ``type: string, nullable: true``; several
    types as ``anyOf``."""
    declared = schema.get("type")
    if declared == "null":
        declared = ["null"]
    if not isinstance(declared, list):
        return schema
    types = [kind for kind in declared if kind != "null"]
    nullable = len(types) < len(declared)
    rest = {key: value for key, value in schema.items() if key != "type"}
    if nullable:
        rest["nullable"] = True
    if len(types) == 1:
        return {"type": types[0], **rest}
    if not types:
        return {**rest, "enum": [None]}
    return {**rest, "anyOf": [{"type": kind} for kind in types]}
