"""The answers of operations that are not a resource's (``/museum-hours``, ``POST /tickets``):
their success response, from the spec's examples, else made from its schema.

The success is the lowest 2xx the operation declares; its body the media type's ``example``,
else its first ``examples`` entry, else the schema's own ``example``, else a value made from the
schema: each property from its ``example``, ``default``, first ``enum`` value or format (a
date, a UUID, an address), one item per array, the least value of a bare type. The same
operation answers the same every time, so a test can rely on it. An image answers a 1x1 PNG.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from typing import Any

import orjson

from cms_mock.openapi.routes import resolved
from cms_mock.openapi.schemas import kind, merged

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")
"""The smallest valid PNG (one pixel): what an ``image/*`` answer without an example carries."""

_FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "uri-reference": "/",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
}
_LEAST: dict[str, Any] = {"string": "string", "integer": 0, "number": 0, "boolean": True, "null": None}


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    media_type: str | None


def answer(spec: dict[str, Any], operation: dict[str, Any]) -> Answer:
    """What ``operation`` answers (see the module's rules), made once."""
    responses = operation.get("responses", {})
    successes = sorted(str(code) for code in responses if re.fullmatch(r"2[0-9][0-9]", str(code)))
    status = successes[0] if successes else "200"
    response = resolved(spec, responses.get(status, responses.get("default", {})))
    content = response.get("content", {})
    if not content:
        return Answer(int(status), b"", None)
    media_type = next((name for name in content if "json" in name), next(iter(content)))
    media = content[media_type]
    if media_type.startswith("image/"):
        return Answer(int(status), PNG, media_type)
    value = _example(spec, media)
    if "json" not in media_type:
        return Answer(int(status), value if isinstance(value, bytes) else str(value or "").encode(), media_type)
    return Answer(int(status), orjson.dumps(value), media_type)


def _example(spec: dict[str, Any], media: dict[str, Any]) -> Any:
    if "example" in media:
        return media["example"]
    for example in media.get("examples", {}).values():
        example = resolved(spec, example)
        if "value" in example:
            return example["value"]
    return made(spec, media.get("schema", {}))


_NONE = object()


def made(spec: dict[str, Any], schema: dict[str, Any], depth: int = 0) -> Any:
    """A value of ``schema`` from what it declares (see the module's rules)."""
    schema = merged(spec, schema)
    declared = _declared(schema)
    if declared is not _NONE:
        return declared
    for choice in ("oneOf", "anyOf"):
        if schema.get(choice):
            return made(spec, schema[choice][0], depth + 1)
    written = kind(schema)
    if depth > 8:  # a schema that contains itself: stop where it could go on for ever
        return None if written in (None, "object", "array") else _LEAST.get(written)
    if written == "object":
        return {name: made(spec, field, depth + 1) for name, field in schema.get("properties", {}).items() if not resolved(spec, field).get("writeOnly")}
    if written == "array":
        return [made(spec, schema.get("items", {}), depth + 1)] * max(1, int(schema.get("minItems", 1)))
    if written == "string":
        return _FORMATS.get(schema.get("format", ""), "string")
    if written in ("integer", "number"):
        return schema.get("minimum", 0)
    return _LEAST.get(written or "")


def _declared(schema: dict[str, Any]) -> Any:
    """The value the schema names itself (an example, its default, a constant, the first of its
    values), or ``_NONE``."""
    for keyword in ("example", "default", "const"):
        if keyword in schema:
            return schema[keyword]
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return schema["examples"][0]
    if schema.get("enum"):
        return schema["enum"][0]
    return _NONE
