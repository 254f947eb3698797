"""The connexion plug-ins that validate requests from the spec (``validator_map``).

Connexion's own JSON body validator stops at the first error, answers 400 and lets some
malformed bodies through to a 500: these parse the body strictly (``strict_json``), read
patterns as ECMA-262 (``patterns``) and list every problem at once in Pydantic v1's words
(``problems``), which is what the seed's FastAPI clients parse.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import uuid
from typing import Any

from connexion.datastructures import MediaTypeDict
from connexion.json_schema import Draft4RequestValidator
from connexion.lifecycle import ConnexionRequest
from connexion.validators import AbstractRequestBodyValidator, ParameterValidator
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope

from cms_mock.errors import FieldError, InvalidBody
from cms_mock.openapi.patterns import ecma_pattern
from cms_mock.openapi.problems import collect_errors, describe
from cms_mock.openapi.strict_json import parse_json
from cms_mock.openapi.versions import SOURCE

FORMAT_CHECKER = FormatChecker(formats=())
"""The built-in specs' formats: only ``date`` is enforced; an address is checked by its schema's
pattern alone (they say every rule of theirs with a pattern, and ``x-error`` words it)."""

SPEC_FORMAT_CHECKER = FormatChecker(formats=())
"""A user's spec's formats: ``date``, and the others its clients rely on (``date-time``,
``uuid``, ``email``, addresses, the sizes of integers)."""


@SPEC_FORMAT_CHECKER.checks("date", raises=ValueError)
@FORMAT_CHECKER.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    """A real calendar date: 2026-02-30 matches the pattern but is no date."""
    if isinstance(value, str):
        dt.date.fromisoformat(value)
    return True


@SPEC_FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    """RFC 3339's date and time, with its offset (``Z`` or ``+01:00``)."""
    return not isinstance(value, str) or dt.datetime.fromisoformat(value).tzinfo is not None


@SPEC_FORMAT_CHECKER.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    """A UUID written whole, with its four hyphens."""
    return not isinstance(value, str) or (uuid.UUID(value) is not None and len(value) == 36 and all(value[i] == "-" for i in (8, 13, 18, 23)))


@SPEC_FORMAT_CHECKER.checks("email")
def _is_email(value: object) -> bool:
    """Some text on each side of one ``@``: what every address has, and no more is judged."""
    return not isinstance(value, str) or (value.count("@") == 1 and all(value.split("@")))


@SPEC_FORMAT_CHECKER.checks("ipv4", raises=ValueError)
def _is_ipv4(value: object) -> bool:
    return not isinstance(value, str) or ipaddress.IPv4Address(value) is not None


@SPEC_FORMAT_CHECKER.checks("ipv6", raises=ValueError)
def _is_ipv6(value: object) -> bool:
    return not isinstance(value, str) or ipaddress.IPv6Address(value) is not None


def _integer_format(name: str, bits: int) -> None:
    """OpenAPI's ``int32`` and ``int64``: an integer its format can hold (a client's type would
    overflow on a larger one)."""

    @SPEC_FORMAT_CHECKER.checks(name)
    def _fits(value: object) -> bool:
        return not isinstance(value, int) or isinstance(value, bool) or -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)


_integer_format("int32", 32)
_integer_format("int64", 64)


RequestValidator = validators.extend(Draft4RequestValidator, {"pattern": ecma_pattern})  # type: ignore[no-untyped-call]
"""Connexion's request validator (nullable, OpenAPI enums) with ECMA-262 patterns."""

JsonSchemaValidator = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    {"pattern": ecma_pattern},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)),
)
"""JSON Schema 2020-12, OpenAPI 3.1's dialect, with ECMA-262 patterns; an integer is written as
one (2020-12 takes ``1.0`` too, which clients' integer types, and 3.0, do not)."""


class BodyValidator(AbstractRequestBodyValidator):
    """Reads the whole body (its size was capped before), parses it strictly, validates it."""

    formats = FORMAT_CHECKER

    def __init__(self, *, schema: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(schema=schema, **kwargs)
        if SOURCE in schema:  # a 3.1 spec's body: judged as written (``versions``)
            self._schema = json.loads(schema[SOURCE])
            self._validator = JsonSchemaValidator(self._schema, format_checker=self.formats)
        else:
            self._validator = RequestValidator(schema, format_checker=self.formats)

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
    deep-copies the parameter's schema, for every value of every request: a large share of the
    CPU of a GET by id). The query parameters their schemas refuse are one 422 that lists every
    one, each at ``["query", <name>]`` in Pydantic v1's words, as FastAPI answers them; a path or
    header parameter keeps connexion's 400 and its message."""

    _validators: dict[int, tuple[dict[str, Any], Any]] = {}  # noqa: RUF012 (keyed by the id of a spec's parameter, which it keeps alive)
    formats = FORMAT_CHECKER

    @classmethod
    def _errors(cls, value: Any, param: dict[str, Any]) -> list[ValidationError]:
        known = cls._validators.get(id(param))
        if known is None or known[0] is not param:
            known = cls._validators[id(param)] = (param, RequestValidator(param.get("schema", param), format_checker=cls.formats))
        return list(known[1].iter_errors(value))

    @staticmethod
    def _judged_here(value: Any, param: dict[str, Any]) -> bool:
        """A value to check against the schema (connexion's own rules for a missing or null one)."""
        return value is not None and not param.get("nullable")

    @classmethod
    def validate_parameter(cls, parameter_type: str, value: Any, param: dict[str, Any], param_name: str | None = None) -> str | None:
        if not cls._judged_here(value, param):
            return ParameterValidator.validate_parameter(parameter_type, value, param, param_name)  # type: ignore[no-any-return]
        errors = cls._errors(value, param)
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
            for problem in describe(error)
        ]
        if problems:
            raise InvalidBody(problems)
        super().validate_request(request)


class SpecBodyValidator(BodyValidator):
    """A user's spec's bodies, with its formats."""

    formats = SPEC_FORMAT_CHECKER


class SpecParameterChecks(ParameterChecks):
    """A user's spec's parameters, with its formats."""

    _validators: dict[int, tuple[dict[str, Any], Any]] = {}  # noqa: RUF012 (as ParameterChecks')
    formats = SPEC_FORMAT_CHECKER


VALIDATOR_MAP = {"body": MediaTypeDict({"*/*json": BodyValidator}), "parameter": ParameterChecks}
SPEC_VALIDATOR_MAP = {"body": MediaTypeDict({"*/*json": SpecBodyValidator}), "parameter": SpecParameterChecks}
"""What validates a user's spec's requests: as ``VALIDATOR_MAP``, with the formats its clients rely on."""
