"""The control plane under ``/__admin`` (``admin-openapi.yaml``): reset, records, snapshots,
the request journal, contract coverage and fault rules.

One spec serves every service: ``admin_spec`` fills in what is each service's own (its record,
its error bodies) before connexion binds it, so the document a service serves, and what it
validates, are that service's.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import orjson
from connexion import request
from starlette.responses import HTMLResponse, Response

from cms_mock import exactjson, state
from cms_mock.errors import ApiError, FieldError, InvalidBody
from cms_mock.handlers.runtime import current, json_response
from cms_mock.handlers.service import prefers_html
from cms_mock.openapi import coverage
from cms_mock.openapi.error_bodies import PROBLEM_SCHEMA
from cms_mock.openapi.problems import MAX_PROBLEMS
from cms_mock.openapi.schemas import named
from cms_mock.services import Service
from cms_mock.stores.records import RecordRules

PREFIX = "/__admin"
SPEC_FILE = "admin-openapi.yaml"


def admin_spec(raw: dict[str, Any], service: Service, service_spec: dict[str, Any]) -> dict[str, Any]:
    """``admin-openapi.yaml`` as ``service`` serves it: every schema of the service's spec, and
    the placeholders (``x-from-service``) pointing at its record and its error bodies."""
    spec = copy.deepcopy(raw)
    own = service_spec["components"]["schemas"]
    record = named(service_spec, service.record_schema)
    rules = service.rules
    record_input = copy.deepcopy(record)
    record_input["required"] = [name for name in record.get("required", []) if name not in rules.made]
    if not record_input["required"]:
        del record_input["required"]  # 3.0 wants at least one name in a required list
    record_input["properties"][rules.id_field] = rules.id_schema()
    error_ref = {"$ref": "#/components/schemas/ErrorMessage"}  # with a spec's own error bodies, the control plane's are problem details
    filled = {
        "record": {"$ref": f"#/components/schemas/{service.record_schema}"},
        "record-input": record_input,
        "error": PROBLEM_SCHEMA if service.dialect is None else own["ErrorMessage"],
        "validation-error": error_ref if service.validation_schema is None else {"$ref": f"#/components/schemas/{service.validation_schema}"},
    }
    schemas = spec["components"]["schemas"]
    for name, schema in list(schemas.items()):
        if "x-from-service" in schema:
            schemas[name] = filled[schema["x-from-service"]]
    spec["components"]["schemas"] = {**{k: v for k, v in own.items() if k not in schemas}, **schemas}
    spec["info"] = {**spec["info"], "title": f"{service_spec['info']['title']}: control plane"}
    return spec


def with_admin_paths(spec: dict[str, Any], control: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with the control plane's paths added under ``PREFIX``, each operation with its
    own security, for the questions the request gate and the API key guard ask of paths."""
    paths = dict(spec["paths"])
    declared = control["components"]["parameters"]
    for template, item in control["paths"].items():
        secured = {name: {**value, "security": value.get("security", control["security"])} for name, value in item.items() if name != "parameters"}
        parameters = [declared[p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p for p in item.get("parameters", [])]
        paths[PREFIX + template] = {**item, **secured, "parameters": parameters}
    return {**spec, "paths": paths}


async def reset_records(keep: str | None = None) -> Response:
    """The start state's records; the journal, coverage counts (unless ``keep=coverage``) and
    fault rules cleared."""
    runtime = current()
    await runtime.store.replace_all(runtime.start_records())
    await runtime.state.reset(keep_coverage=keep == "coverage")
    return Response(status_code=204)


async def get_records() -> Response:
    return json_response(await current().store.keyed())


async def put_records(body: dict[str, Any] | list[dict[str, Any]]) -> Response:
    runtime = current()
    await runtime.store.replace_all(_given(body, runtime.rules))
    return Response(status_code=204)


def _given(body: dict[str, Any] | list[dict[str, Any]], rules: RecordRules) -> list[dict[str, Any]]:
    """The body's records in order, each checked beyond its schema (ids of the service's kind,
    unique); every problem at once, at ``["body", <index or id>, <field>]``."""
    counted, field = rules.counted_ids, rules.id_field
    problems: list[FieldError] = []
    records = []
    seen: set[str] = set()
    for where, record in body.items() if isinstance(body, dict) else enumerate(body):
        if isinstance(body, dict):
            if field in record and str(record[field]) != where:
                problems.append(FieldError(("body", where, field), "must be the record's key", "value_error.id"))
            elif field not in record:
                key = str(where)
                record = {field: int(key) if counted and re.fullmatch(r"[1-9][0-9]{0,18}", key) else key, **record}
        for problem in rules.problems(record):
            name, _, message = problem.partition(": ")
            problems.append(FieldError(("body", where, name), message, "value_error"))
        if field in record:
            key = rules.key(record)
            if key in seen:
                problems.append(FieldError(("body", where, field), "is given to another record too", "value_error.id"))
            seen.add(key)
        records.append(record)
    if problems:
        raise InvalidBody(problems[:MAX_PROBLEMS])
    return records


async def list_snapshots() -> Response:
    snapshots = await current().store.snapshots()
    return json_response(orjson.dumps([snapshot.as_dict() for snapshot in snapshots]))


async def save_snapshot(name: str) -> Response:
    snapshot, replaced = await current().store.save_snapshot(name)
    return json_response(orjson.dumps(snapshot.as_dict()), 200 if replaced else 201)


async def restore_snapshot(name: str) -> Response:
    await current().store.restore_snapshot(name)
    return Response(status_code=204)


async def delete_snapshot(name: str) -> Response:
    await current().store.delete_snapshot(name)
    return Response(status_code=204)


# -- the journal, coverage, fault rules ------------------------------------------------------


async def list_requests(**query: Any) -> Response:
    page = await current().state.requests(_matcher(query), query.get("limit"))
    return json_response(exactjson.dumps({"requests": page.entries, "total": page.total}))


async def count_requests(body: dict[str, Any]) -> Response:
    page = await current().state.requests(_matcher(body), 0)
    return json_response(orjson.dumps({"count": page.total}))


def _matcher(given: dict[str, Any]) -> state.Matcher:
    """The keys of a query or a count body that say which entries match (not ``limit``)."""
    return {key: value for key, value in given.items() if key in (*state.HEAD_KEYS, "body")}


async def clear_requests() -> Response:
    await current().state.clear_requests()
    return Response(status_code=204)


async def get_coverage() -> Response:
    runtime = current()
    report = coverage.report(runtime.spec, await runtime.state.counts())
    if prefers_html(request.headers.get("accept", "")):
        return HTMLResponse(coverage.page(runtime.title, report))
    return json_response(orjson.dumps(report))


async def list_faults() -> Response:
    return json_response(orjson.dumps(await current().state.faults()))


async def add_fault(body: dict[str, Any]) -> Response:
    runtime = current()
    problems = runtime.faults.problems(body)
    if problems:
        raise InvalidBody(problems)
    rule = state.new_rule(body)
    await runtime.state.add_fault(rule)
    return json_response(orjson.dumps(rule), 201)


async def delete_fault(fault_id: str) -> Response:
    if not await current().state.delete_fault(fault_id):
        raise ApiError(f"Fault rule {fault_id} not found", status=404)
    return Response(status_code=204)


async def clear_faults() -> Response:
    await current().state.clear_faults()
    return Response(status_code=204)
