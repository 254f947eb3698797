"""Every example in both specs validates against its schema, and the server accepts each request example.

Swagger UI's "Try it out" sends the request examples as they are: an example its own schema
refuses (as ``address: 1 New Street, Springfield`` once was, a YAML flow mapping splitting it
in two) is a 422 for everyone who tries the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.app import build_client
from tests.support.contract import SPECS, example_path, load, operations, problems


def examples(node: Any, where: str = "#") -> Iterator[tuple[str, dict[str, Any], Any]]:
    """``(where, schema, example)`` for every ``example`` and ``examples`` value under ``node``."""
    if isinstance(node, dict):
        if "schema" in node:  # a media type, parameter or header: its examples are of its schema
            if "example" in node:
                yield where, node["schema"], node["example"]
            for name, named in node.get("examples", {}).items():
                yield f"{where}/examples/{name}", node["schema"], named["value"]
        elif "example" in node and ("type" in node or "properties" in node or "allOf" in node):
            yield where, {k: v for k, v in node.items() if k != "example"}, node["example"]
        for key, value in node.items():
            if key not in ("example", "examples"):
                yield from examples(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from examples(value, f"{where}/{index}")


@pytest.mark.parametrize("service", sorted(SPECS))
def test_every_example_validates_against_its_schema(service):
    found = list(examples(load(service)))
    assert len(found) > 30  # the walk reaches the examples (each schema's, each media type's)
    broken = {where: problems(schema, example) for where, schema, example in found if problems(schema, example)}
    assert broken == {}


def request_examples(service: str) -> list[tuple[str, str, Any]]:
    spec = load(service)
    found = []
    for method, path, operation, item in operations(spec):
        media = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        if "example" in media:
            found.append((method, example_path(path, item, operation), media["example"]))
    return found


@pytest.mark.parametrize("service", sorted(SPECS))
def test_the_server_accepts_every_request_example_as_swagger_ui_sends_it(tmp_path, service):
    sent = request_examples(service)
    assert {method for method, _, _ in sent} >= {"POST"}
    with build_client(tmp_path, service=service) as client:
        for method, path, body in sent:
            response = client.request(method, path, json=body)
            assert response.status_code in (200, 201), (method, path, response.text)
