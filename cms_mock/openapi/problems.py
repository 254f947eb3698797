"""Every schema error of a value at once, in Pydantic v1's words and types.

The seed's FastAPI clients parse a 422's ``detail`` as Pydantic v1 writes it, and a client
fixing a body wants every problem in one answer, not one per attempt.
"""

from __future__ import annotations

import math
from typing import Any

from jsonschema import ValidationError

from cms_mock.errors import FieldError
from cms_mock.openapi.patterns import pattern_problem

_TYPE_ERRORS = {
    "string": ("str type expected", "type_error.str"),
    "object": ("value is not a valid dict", "type_error.dict"),
    "array": ("value is not a valid list", "type_error.list"),
    "integer": ("value is not a valid integer", "type_error.integer"),
    "number": ("value is not a valid float", "type_error.float"),
    "boolean": ("value could not be parsed to a boolean", "type_error.bool"),
}

_LIMIT_ERRORS = {
    "format": ("value is not a valid {limit}", "value_error.{limit}"),
    "minLength": ("ensure this value has at least {limit} characters", "value_error.any_str.min_length"),
    "maxLength": ("ensure this value has at most {limit} characters", "value_error.any_str.max_length"),
    "minimum": ("ensure this value is greater than or equal to {limit}", "value_error.number.not_ge"),
    "maximum": ("ensure this value is less than or equal to {limit}", "value_error.number.not_le"),
}
"""The keywords whose words only name the schema's value for them (``{limit}``)."""

MAX_PROBLEMS = 100
"""Problems listed in one answer at most. A body of many empty records has millions: listing
them all held a worker for long and made an answer far larger than the body; the first hundred
say what is wrong."""


def describe(error: ValidationError) -> list[FieldError]:
    """Pydantic v1's wording for one jsonschema error (one entry per field it concerns)."""
    loc: tuple[str | int, ...] = ("body", *error.absolute_path)
    kind: Any = error.validator  # jsonschema's stubs allow "unset" for what a raised error always has
    instance: Any = error.instance
    schema: Any = error.schema
    if kind == "required":
        names: Any = error.validator_value
        return [FieldError((*loc, name), "field required", "value_error.missing") for name in names if name not in instance]
    if kind == "additionalProperties":
        known = schema.get("properties", {})
        return [FieldError((*loc, name), "extra fields not permitted", "value_error.extra") for name in instance if name not in known]
    return [_value_problem(loc, kind, error)]


def _value_problem(loc: tuple[str | int, ...], kind: str, error: ValidationError) -> FieldError:
    """The problem of the one value at ``loc``, which broke the schema's ``kind`` keyword."""
    limit: Any = error.validator_value
    if kind == "type" and error.instance is None and len(loc) > 1:
        return FieldError(loc, "none is not an allowed value", "type_error.none.not_allowed")
    if kind == "type":
        types = [name for name in (limit if isinstance(limit, list) else [limit]) if name != "null"]  # 3.1: ["string", "null"]
        return FieldError(loc, *_TYPE_ERRORS.get(types[0] if len(types) == 1 else "", (error.message, "type_error")))
    if kind == "enum":
        permitted = ", ".join(repr(v) for v in limit)
        return FieldError(loc, f"value is not a valid enumeration member; permitted: {permitted}", "type_error.enum")
    if kind == "pattern":
        schema: Any = error.schema
        return pattern_problem(loc, schema)
    if kind in _LIMIT_ERRORS:
        msg, type_ = _LIMIT_ERRORS[kind]
        return FieldError(loc, msg.format(limit=limit), type_.format(limit=limit))
    return FieldError(loc, error.message, f"value_error.{kind}")


def _branch(validator: Any, schema: dict[str, Any], value: Any) -> Any:
    """A validator of the one branch of a ``oneOf``/``anyOf`` whose branches differ by JSON type
    (an object of records or an array of them) that the value's type picks, so its errors come
    one at a time, each at its own place (a ``oneOf`` judges every branch whole before it says
    anything, and then only that the value is valid under none of them)."""
    for keyword in ("oneOf", "anyOf"):
        branches = schema.get(keyword)
        if branches and all("type" in branch for branch in branches):
            chosen = [branch for branch in branches if validator.is_type(value, branch["type"])]
            if len(chosen) == 1:
                return validator.evolve(schema=chosen[0])
    return validator


def collect_errors(validator: Any, schema: dict[str, Any], value: Any) -> list[FieldError]:
    """Every problem, one per location (a type error wins), in the schema's field order; at most
    ``MAX_PROBLEMS`` locations, found lazily."""
    by_loc: dict[tuple[str | int, ...], FieldError] = {}
    for error in _branch(validator, schema, value).iter_errors(value):
        if len(by_loc) >= MAX_PROBLEMS:
            break
        for problem in describe(error):
            if problem.loc not in by_loc or error.validator == "type":
                by_loc[problem.loc] = problem
    order = {name: i for i, name in enumerate(schema.get("properties", {}))}
    return sorted(by_loc.values(), key=lambda e: (len(e.loc) > 1, order.get(e.loc[1], math.inf) if len(e.loc) > 1 else 0))[:MAX_PROBLEMS]
