"""Request body validation from the spec: strict JSON, then every schema error in one answer.

Connexion's own JSON body validator stops at the first error, answers 400 and lets some
malformed bodies through to a 500; this one is plugged in through ``validator_map`` instead.
Messages and types follow Pydantic v1, which is what the seed's FastAPI clients parse.

Patterns are read as ECMA-262 regular expressions, as JSON Schema defines them and as every
client validating the spec reads them (ajv, Prism, Go's RE2 for what it supports): Python's
``re`` would let ``$`` match before a final newline and a digit class match any Unicode digit, so a
value the server accepted could break a client's validation of the data it reads back.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from collections.abc import Iterator
from typing import Any

import orjson
import regress
from connexion.datastructures import MediaTypeDict
from connexion.json_schema import Draft4RequestValidator
from connexion.lifecycle import ConnexionRequest
from connexion.validators import AbstractRequestBodyValidator, ParameterValidator
from jsonschema import FormatChecker, ValidationError, validators
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope

from cms_mock.errors import FieldError, InvalidBody, MalformedBody, MissingBody

FORMAT_CHECKER = FormatChecker(formats=())
"""Only the formats checked here are enforced; an address is checked by its schema's pattern alone."""


@FORMAT_CHECKER.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    """A real calendar date: 2026-02-30 matches the pattern but is no date."""
    if isinstance(value, str):
        dt.date.fromisoformat(value)
    return True


@functools.cache
def ecma_regex(pattern: str) -> regress.Regex:
    return regress.Regex(pattern)


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    """The pattern, unless the value is already too long: cheap checks first, so a megabyte in
    one field costs a length comparison, not a regular-expression search (its maxLength error says why)."""
    if not validator.is_type(instance, "string") or len(instance) > schema.get("maxLength", len(instance)):
        return
    if ecma_regex(pattern).find(instance) is None:
        yield ValidationError(f"{instance[:100]!r} does not match {pattern!r}")


def check_patterns(node: Any) -> None:
    """Compile every ``pattern`` of a spec and check its ``x-error`` now, so a spec the server
    cannot use stops the start instead of failing its first request with a 500, and no refusal
    ever quotes a regular expression to a person."""
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            try:
                ecma_regex(node["pattern"])
            except regress.RegressError as exc:
                raise ValueError(f"pattern {node['pattern']!r} is not an ECMA-262 regular expression: {exc}") from None
            if "x-error" not in node:
                raise ValueError(f"pattern {node['pattern']!r} has no x-error: say what a value breaking it does wrong, in words")
        if "x-error" in node and not {"msg", "type"} <= set(node["x-error"]):
            raise ValueError(f"x-error {node['x-error']!r} needs a msg and a type")
        for value in node.values():
            check_patterns(value)
    elif isinstance(node, list):
        for value in node:
            check_patterns(value)


RequestValidator = validators.extend(Draft4RequestValidator, {"pattern": _ecma_pattern})
"""Connexion's request validator (nullable, OpenAPI enums) with ECMA-262 patterns."""


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


_TYPE_ERRORS = {
    "string": ("str type expected", "type_error.str"),
    "object": ("value is not a valid dict", "type_error.dict"),
    "array": ("value is not a valid list", "type_error.list"),
    "integer": ("value is not a valid integer", "type_error.integer"),
    "number": ("value is not a valid float", "type_error.float"),
    "boolean": ("value could not be parsed to a boolean", "type_error.bool"),
}


def _describe(error: ValidationError) -> list[FieldError]:
    """Pydantic v1's wording for one jsonschema error (one entry per field it concerns)."""
    loc: tuple[str | int, ...] = ("body", *error.absolute_path)
    kind: Any = error.validator  # jsonschema's stubs allow "unset" for what a raised error always has
    limit: Any = error.validator_value
    instance: Any = error.instance
    schema: Any = error.schema
    if kind == "required":
        return [FieldError((*loc, name), "field required", "value_error.missing") for name in limit if name not in instance]
    if kind == "additionalProperties":
        known = schema.get("properties", {})
        return [FieldError((*loc, name), "extra fields not permitted", "value_error.extra") for name in instance if name not in known]
    if kind == "type" and instance is None and len(loc) > 1:
        return [FieldError(loc, "none is not an allowed value", "type_error.none.not_allowed")]
    if kind == "type":
        msg, type_ = _TYPE_ERRORS.get(limit, (error.message, "type_error"))
        return [FieldError(loc, msg, type_)]
    if kind == "enum":
        permitted = ", ".join(repr(v) for v in limit)
        return [FieldError(loc, f"value is not a valid enumeration member; permitted: {permitted}", "type_error.enum")]
    if kind == "format":
        return [FieldError(loc, f"value is not a valid {limit}", f"value_error.{limit}")]
    if kind == "minLength":
        return [FieldError(loc, f"ensure this value has at least {limit} characters", "value_error.any_str.min_length")]
    if kind == "maxLength":
        return [FieldError(loc, f"ensure this value has at most {limit} characters", "value_error.any_str.max_length")]
    if kind == "pattern":
        return [pattern_problem(loc, schema)]
    if kind == "minimum":
        return [FieldError(loc, f"ensure this value is greater than or equal to {limit}", "value_error.number.not_ge")]
    if kind == "maximum":
        return [FieldError(loc, f"ensure this value is less than or equal to {limit}", "value_error.number.not_le")]
    return [FieldError(loc, error.message, f"value_error.{kind}")]


def pattern_problem(loc: tuple[str | int, ...], schema: dict[str, Any]) -> FieldError:
    """A value that does not match the schema's ``pattern``, in the spec's own words for it (its
    ``x-error``, which ``check_patterns`` requires): a regular expression is a rule for a
    machine, not an explanation for a person."""
    words = schema["x-error"]
    return FieldError(loc, words["msg"], words["type"])


def _leaves(validator: Any, error: ValidationError) -> list[ValidationError]:
    """For a ``oneOf``/``anyOf`` whose branches differ by JSON type (an object of records or an
    array of them), the errors of the branch of the value's type: each at its own place, not one
    "valid under none of the given schemas" for the whole body."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        branches: Any = error.validator_value
        for index, branch in enumerate(branches):
            if "type" in branch and validator.is_type(error.instance, branch["type"]):
                return [leaf for sub in error.context if sub.relative_schema_path[0] == index for leaf in _leaves(validator, sub)]
    return [error]


MAX_PROBLEMS = 100
"""Problems listed in one answer at most. A 1 MiB body of 262,144 empty records has 1.8 million:
listing them took a worker 100 s and a 130 MB answer; the first hundred say what is wrong."""


def _branch(validator: Any, schema: dict[str, Any], body: Any) -> Any:
    """A validator of the one branch of a ``oneOf``/``anyOf`` whose branches differ by JSON type
    (an object of records or an array of them) that the body's type picks, so its errors come
    one at a time (a ``oneOf`` judges every branch whole before it says anything)."""
    for keyword in ("oneOf", "anyOf"):
        branches = schema.get(keyword)
        if branches and all("type" in branch for branch in branches):
            chosen = [branch for branch in branches if validator.is_type(body, branch["type"])]
            if len(chosen) == 1:
                return validator.evolve(schema=chosen[0])
    return validator


def collect_errors(validator: Any, schema: dict[str, Any], body: Any) -> list[FieldError]:
    """Every problem, one per location (a type error wins), in the schema's field order; at most
    ``MAX_PROBLEMS`` locations, found lazily."""
    by_loc: dict[tuple[str | int, ...], FieldError] = {}
    for error in (leaf for found in _branch(validator, schema, body).iter_errors(body) for leaf in _leaves(validator, found)):
        if len(by_loc) >= MAX_PROBLEMS:
            break
        for problem in _describe(error):
            if problem.loc not in by_loc or error.validator == "type":
                by_loc[problem.loc] = problem
    order = {name: i for i, name in enumerate(schema.get("properties", {}))}
    return sorted(by_loc.values(), key=lambda e: (len(e.loc) > 1, order.get(e.loc[1], math.inf) if len(e.loc) > 1 else 0))[:MAX_PROBLEMS]


class BodyValidator(AbstractRequestBodyValidator):
    """Reads the whole body (its size was capped before), parses it strictly, validates it."""

    def __init__(self, *, schema: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(schema=schema, **kwargs)
        self._validator = RequestValidator(schema, format_checker=FORMAT_CHECKER)

    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
        messages = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":  # gone before the whole body came: never judge a part
                raise ClientDisconnect()
            messages.append(message)
            if not message.get("more_body", False):
                break
        body = parse_json(b"".join(m.get("body", b"") for m in messages))
        errors = collect_errors(self._validator, self._schema, body)
        if errors:
            raise InvalidBody(errors)
        return self._insert_messages(receive, messages=messages), scope


class ParameterChecks(ParameterValidator):
    """Parameters checked by validators built once per parameter (connexion builds one, and
    deep-copies the parameter's schema, for every value of every request: 12 % of the CPU of a
    GET by id, measured by ``cProfile`` under wrk). The query parameters their schemas refuse
    are one 422 that lists every one, each at ``["query", <name>]`` in Pydantic v1's words, as
    FastAPI answers them; a path or header parameter keeps connexion's 400 and its message."""

    _validators: dict[int, tuple[dict[str, Any], Any]] = {}  # noqa: RUF012 (keyed by the id of a spec's parameter, which it keeps alive)

    @staticmethod
    def _errors(value: Any, param: dict[str, Any]) -> list[ValidationError]:
        known = ParameterChecks._validators.get(id(param))
        if known is None or known[0] is not param:
            known = ParameterChecks._validators[id(param)] = (param, RequestValidator(param.get("schema", param), format_checker=FORMAT_CHECKER))
        return list(known[1].iter_errors(value))

    @staticmethod
    def _judged_here(value: Any, param: dict[str, Any]) -> bool:
        """A value to check against the schema (connexion's own rules for a missing or null one)."""
        return value is not None and not param.get("nullable")

    @staticmethod
    def validate_parameter(parameter_type: str, value: Any, param: dict[str, Any], param_name: str | None = None) -> str | None:
        if not ParameterChecks._judged_here(value, param):
            return ParameterValidator.validate_parameter(parameter_type, value, param, param_name)  # type: ignore[no-any-return]
        errors = ParameterChecks._errors(value, param)
        return str(errors[0]) if errors else None

    def validate_query_parameter(self, param: dict[str, Any], request: ConnexionRequest) -> str | None:
        """Connexion's check of a missing or null value; the values were judged in ``validate_request``."""
        value = request.query_params.get(param["name"])
        return None if self._judged_here(value, param) else self.validate_parameter("query", value, param)

    def validate_request(self, request: ConnexionRequest) -> None:
        """Every query value first, all in one 422; then connexion's checks of the rest."""
        problems = [
            FieldError(("query", param["name"]), problem.msg, problem.type)
            for param in self.parameters.get("query", [])
            if self._judged_here(value := request.query_params.get(param["name"]), param)
            for error in self._errors(value, param)[:1]
            for problem in _describe(error)
        ]
        if problems:
            raise InvalidBody(problems)
        super().validate_request(request)


VALIDATOR_MAP = {"body": MediaTypeDict({"*/*json": BodyValidator}), "parameter": ParameterChecks}
