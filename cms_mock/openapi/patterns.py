"""The spec's ``pattern`` keywords, read as ECMA-262 regular expressions and refused in words.

JSON Schema defines a pattern as an ECMA-262 regular expression, and every client validating
the spec reads it so (ajv, Prism, Go's RE2 for what it supports): Python's ``re`` would let
``$`` match before a final newline and a digit class match any Unicode digit, so a value the
server accepted could break a client's validation of the data it reads back.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import regress
from jsonschema import ValidationError

from cms_mock.errors import FieldError


@functools.cache
def ecma_regex(pattern: str) -> regress.Regex:
    return regress.Regex(pattern)


def ecma_pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    """jsonschema's ``pattern`` keyword, ECMA-262's way. The pattern, unless the value is already
    too long: cheap checks first, so a megabyte in one field costs a length comparison, not a
    regular-expression search (its maxLength error says why)."""
    if not validator.is_type(instance, "string") or len(instance) > schema.get("maxLength", len(instance)):
        return
    if ecma_regex(pattern).find(instance) is None:
        yield ValidationError(f"{instance[:100]!r} does not match {pattern!r}")


def check_patterns(node: Any, *, worded: bool = True) -> None:
    """Compile every ``pattern`` of a spec now, so a spec the server cannot use stops the start
    instead of failing its first request with a 500; with ``worded`` (the built-in specs), check
    that each has its ``x-error``, so no refusal quotes a regular expression to a person."""
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            try:
                ecma_regex(node["pattern"])
            except regress.RegressError as exc:
                raise ValueError(f"pattern {node['pattern']!r} is not an ECMA-262 regular expression: {exc}") from None
            if worded and "x-error" not in node:
                raise ValueError(f"pattern {node['pattern']!r} has no x-error: say what a value breaking it does wrong, in words")
        if "x-error" in node and not {"msg", "type"} <= set(node["x-error"]):
            raise ValueError(f"x-error {node['x-error']!r} needs a msg and a type")
        for value in node.values():
            check_patterns(value, worded=worded)
    elif isinstance(node, list):
        for value in node:
            check_patterns(value, worded=worded)


def pattern_problem(loc: tuple[str | int, ...], schema: dict[str, Any]) -> FieldError:
    """A value that does not match the schema's ``pattern``, in the spec's own words for it (its
    ``x-error``, which ``check_patterns`` requires of the built-in specs): a regular expression is
    a rule for a machine, not an explanation for a person. A user's spec without them quotes it."""
    words = schema.get("x-error") or {"msg": f"must match the pattern {schema['pattern']}", "type": "value_error.str.regex"}
    return FieldError(loc, words["msg"], words["type"])
