"""Strict JSON: a body the spec's schemas judge is first a JSON document every client reads the same way.

Python's ``json`` takes NaN, Infinity, lone surrogates and repeated keys (the last one wins),
which other parsers refuse or read differently, so a record stored from such a body could read
back as something else, or not at all, in a client.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from cms_mock.errors import MalformedBody, MissingBody


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        duplicate = next(key for key in keys if keys.count(key) > 1)
        raise ValueError(f"duplicate key {duplicate!r}")
    return dict(pairs)


def parse_json(raw: bytes) -> Any:
    """Parse a body strictly: UTF-8, no NaN or Infinity, no lone surrogates, no duplicate keys."""
    if not raw.strip():
        raise MissingBody()
    try:
        orjson.loads(raw)  # rejects bad UTF-8, surrogates, NaN, nesting deeper than 1024
        return json.loads(raw, object_pairs_hook=_reject_duplicates)
    except (ValueError, RecursionError) as exc:
        raise MalformedBody(f"Invalid JSON: {exc}") from None
