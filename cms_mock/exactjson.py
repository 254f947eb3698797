"""JSON both ways with every number kept as it was, for the request journal.

orjson is fast, but reads an integer outside 64 bits as a float (``123456789012345678901234567890``
comes back as ``1.2345678901234568e+29``) and refuses to write one. The standard library keeps
any integer exact, at several times the cost. So each call takes orjson's path, and only what
needs it takes the standard library's: a document with a run of 20 digits (``2**64`` has 20;
every shorter integer is within orjson's range), a value orjson refuses to write.

Depth: ``loads`` reads what orjson reads, nesting up to 1024 levels; ``dumps`` writes up to
``DEPTH`` levels on orjson's path, deeper on the standard library's as far as the interpreter's
stack allows. What either cannot do raises ``ValueError`` (``TypeError`` for a value that is
not JSON), never ``RecursionError``.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

DEPTH = 254
"""The deepest nesting ``dumps`` writes on its fast path (orjson's limit)."""

_DIGITS = bytes(48 if byte in b"0123456789" else 32 for byte in range(256))
"""Every digit a ``0``, every other byte a space: a run of 20 digits is then a plain search, at
the speed of a copy (a regular expression tries each digit in turn as a start)."""
_RUN = b"0" * 20


def loads(raw: bytes) -> Any:
    """The value of a JSON document, its integers exact whatever their size. Refuses, with
    ``ValueError``, what orjson refuses: invalid JSON or UTF-8, NaN and Infinity, lone
    surrogates, nesting deeper than 1024 levels."""
    value = orjson.loads(raw)
    if _RUN not in raw.translate(_DIGITS):
        return value
    try:
        return json.loads(raw)
    except RecursionError:
        pass
    raise ValueError("an integer outside 64 bits nested deeper than the standard library's parser reaches")


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, its integers exact whatever their size."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: an integer outside 64 bits, nesting deeper than DEPTH, or not JSON
        pass
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except RecursionError:
        pass
    raise ValueError("nested deeper than the standard library's encoder reaches")
