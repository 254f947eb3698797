"""A file of records (the data file's format) checked whole against a service's spec, before
any of it goes into a store: what ``cms-mock import`` and ``FIXTURES`` read."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connexion.json_schema import resolve_refs

from cms_mock.errors import MalformedBody, MissingBody
from cms_mock.openapi.problems import collect_errors
from cms_mock.openapi.strict_json import parse_json
from cms_mock.openapi.validators import FORMAT_CHECKER, RequestValidator
from cms_mock.services import Service


class InvalidRecords(ValueError):
    """A file to import, or of fixtures, is not records of the service: every problem, one per line."""


def read_records(chosen: Service, data: bytes) -> list[dict[str, Any]]:
    """The file's records in order, each checked against the spec's record schema; raises
    ``InvalidRecords`` listing every problem (where it is, and what)."""
    try:
        document = parse_json(data)
    except MissingBody:
        raise InvalidRecords("the file is empty: expected a JSON object of records keyed by id") from None
    except MalformedBody as exc:
        raise InvalidRecords(f"not a JSON document: {exc.errors[0].msg}") from None
    if not isinstance(document, dict):
        raise InvalidRecords(f"the top level is a {type(document).__name__}, not an object of records keyed by id")
    schema = copy.deepcopy(resolve_refs(chosen.load_spec())["components"]["schemas"][chosen.record_schema])
    validator = RequestValidator(schema, format_checker=FORMAT_CHECKER)
    problems = []
    for key, record in document.items():
        errors = collect_errors(validator, schema, record)
        for error in errors:
            problems.append(f"record {key!r}: {'.'.join(map(str, error.loc[1:])) or 'record'}: {error.msg}")
        if isinstance(record, dict):
            refused = {str(error.loc[1]) for error in errors if len(error.loc) > 1}  # said once, by the schema
            problems.extend(f"record {key!r}: {problem}" for problem in chosen.rules.problems(record) if problem.partition(": ")[0] not in refused)
            field = chosen.rules.id_field
            if str(record.get(field)) != key:
                problems.append(f"record {key!r}: its {field} {record.get(field)!r} is not its key")
    if problems:
        raise InvalidRecords(f"{len(problems)} problem{'s' if len(problems) > 1 else ''}, nothing was imported:\n" + "\n".join(problems))
    return list(document.values())


def start_records(chosen: Service, fixtures: Path | None) -> Callable[[], list[dict[str, Any]]]:
    """What a reset puts back: the ``fixtures`` file's records (read and checked now, so a bad
    file stops the start), or the service's samples."""
    if fixtures is None:
        return chosen.rules.samples
    try:
        records = read_records(chosen, fixtures.read_bytes())
    except OSError as exc:
        raise InvalidRecords(f"FIXTURES {fixtures} cannot be read: {exc.strerror or exc}") from None
    return lambda: copy.deepcopy(records)
