"""How a user's spec is read, piece by piece: the 3.0 view of a 3.1 spec, answers made from
schemas and examples, error bodies filled into declared schemas, and the credentials its
security schemes ask for (in-process, through the app)."""

from __future__ import annotations

import json

import pytest
import yaml

from cms_mock.openapi import error_bodies, examples, versions
from cms_mock.openapi.schemas import merged
from tests.support.app import build_client

SPEC: dict = {
    "components": {
        "schemas": {"Id": {"type": "integer", "minimum": 3}, "Node": {"type": "object", "properties": {"next": {"$ref": "#/components/schemas/Node"}}}}
    }
}


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "string", "format": "uuid"}, "00000000-0000-4000-8000-000000000000"),
        ({"type": "string", "format": "date-time"}, "2024-01-01T00:00:00Z"),
        ({"type": "string"}, "string"),
        ({"type": ["string", "null"], "examples": ["first"]}, "first"),
        ({"enum": ["b", "a"]}, "b"),
        ({"const": 7}, 7),
        ({"$ref": "#/components/schemas/Id"}, 3),
        ({"type": "array", "items": {"type": "boolean"}, "minItems": 2}, [True, True]),
        ({"oneOf": [{"type": "number"}, {"type": "string"}]}, 0),
        ({"type": "object", "properties": {"a": {"type": "integer"}, "secret": {"type": "string", "writeOnly": True}}}, {"a": 0}),
        ({"allOf": [{"properties": {"a": {"default": 1}}}, {"properties": {"b": {"example": "x"}}}]}, {"a": 1, "b": "x"}),
        ({"type": "null"}, None),
    ],
)
def test_a_value_is_made_from_what_its_schema_declares(schema, value):
    assert examples.made(SPEC, schema) == value


def test_a_schema_that_contains_itself_is_made_to_a_finite_depth():
    node = examples.made(SPEC, {"$ref": "#/components/schemas/Node"})
    depth = 0
    while node:
        node, depth = node["next"], depth + 1
    assert 5 < depth < 20


def test_an_answer_is_the_example_else_made_else_empty():
    spec = {"components": {"examples": {"Two": {"value": [2]}}}}
    listed = {"responses": {"201": {"description": "x", "content": {"application/json": {"examples": {"two": {"$ref": "#/components/examples/Two"}}}}}}}
    assert examples.answer(spec, listed) == examples.Answer(201, b"[2]", "application/json")
    text = {"responses": {"200": {"description": "x", "content": {"text/plain": {"example": "hello"}}}}}
    assert examples.answer(spec, text) == examples.Answer(200, b"hello", "text/plain")
    image = {"responses": {"200": {"description": "x", "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}}}
    assert examples.answer(spec, image).body == examples.PNG
    assert examples.answer(spec, {"responses": {"204": {"description": "none"}}}) == examples.Answer(204, b"", None)


def test_a_31_spec_is_seen_by_connexion_as_30_and_its_bodies_kept_as_written():
    spec = {
        "openapi": "3.1.0",
        "info": {"title": "T", "version": "1", "summary": "3.1 only", "license": {"name": "MIT", "identifier": "MIT"}},
        "webhooks": {"hook": {}},
        "paths": {
            "/a": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}},
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
        "components": {
            "schemas": {
                "A": {
                    "type": "object",
                    "properties": {
                        "kind": {"const": "a"},
                        "size": {"type": "number", "exclusiveMinimum": 0},
                        "either": {"type": ["string", "integer", "null"]},
                        "nothing": {"type": "null"},
                        "pair": {"type": "array", "prefixItems": [{"type": "string"}], "items": False},
                        "tag": {"type": "string", "examples": ["x"]},
                    },
                }
            }
        },
    }
    view = versions.for_connexion(spec)
    properties = view["components"]["schemas"]["A"]["properties"]
    assert view["openapi"] == "3.0.3"
    assert "webhooks" not in view
    assert view["info"] == {"title": "T", "version": "1", "license": {"name": "MIT"}}
    assert properties["kind"] == {"enum": ["a"]}
    assert properties["size"] == {"type": "number", "minimum": 0, "exclusiveMinimum": True}
    assert properties["either"] == {"nullable": True, "anyOf": [{"type": "string"}, {"type": "integer"}]}
    assert properties["nothing"] == {"nullable": True, "enum": [None]}
    assert properties["pair"] == {"type": "array"}
    assert properties["tag"] == {"type": "string", "example": "x"}
    body = view["paths"]["/a"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert json.loads(body[versions.SOURCE])["$ref"] == "#/$defs/A"  # the schema as written, whole
    assert versions.for_connexion({"openapi": "3.0.3"}) == {"openapi": "3.0.3"}


def test_an_error_body_is_filled_into_the_schema_declared_for_its_status():
    spec = {"components": {"schemas": {"Code": {"type": "string", "enum": ["E1", "E2"]}}}}
    nested = {
        "type": "object",
        "required": ["error", "trace"],
        "properties": {
            "error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
            "trace": {"$ref": "#/components/schemas/Code"},
        },
    }
    assert error_bodies.fill(spec, nested, 404, "No such thing") == {"error": {"code": "404", "message": "No such thing"}, "trace": "E1"}
    problem = error_bodies.fill(spec, error_bodies.PROBLEM_SCHEMA, 409, "Taken")
    assert problem == {"type": "about:blank", "title": "Conflict", "status": 409, "detail": "Taken"}
    assert error_bodies.fill(spec, {"type": "string"}, 400, "Bad") == "Bad"
    assert error_bodies.fill(spec, {"type": "array", "items": {"type": "string"}}, 400, "Bad") == ["string"]
    ranged = {"responses": {"4XX": {"description": "x", "content": {error_bodies.PROBLEM: {"schema": {"type": "string"}}}}, "default": {"description": "y"}}}
    assert error_bodies.declared_body(spec, ranged, 418) == ({"type": "string"}, error_bodies.PROBLEM)
    assert error_bodies.declared_body(spec, ranged, 500) is None  # a default without content: no body is declared
    assert error_bodies.declared_body(spec, None, 404) is None


def test_all_of_is_read_as_one_object():
    schema = merged(SPEC, {"allOf": [{"$ref": "#/components/schemas/Node"}, {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}]})
    assert set(schema["properties"]) == {"next", "id"}
    assert schema["required"] == ["id"]
    assert schema["type"] == "object"


KEYS = """
openapi: 3.0.3
info: {title: Keys, version: "1"}
components:
  securitySchemes:
    header: {type: apiKey, in: header, name: X-Key}
    query: {type: apiKey, in: query, name: key}
    cookie: {type: apiKey, in: cookie, name: session}
    token: {type: http, scheme: bearer}
    oauth: {type: oauth2, flows: {clientCredentials: {tokenUrl: /token, scopes: {}}}}
  schemas:
    Thing: {type: object, properties: {id: {type: integer}}}
paths:
  /things:
    get:
      operationId: listThings
      security: [{header: []}, {query: []}, {cookie: []}]
      responses: {"200": {description: ok, content: {application/json: {schema: {type: array, items: {$ref: "#/components/schemas/Thing"}}}}}}
  /things/{id}:
    parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
    get:
      operationId: getThing
      security: [{token: [], oauth: []}]
      responses: {"200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Thing"}}}}}
"""


def test_credentials_of_the_kind_a_scheme_names_pass_wherever_it_says_they_go(tmp_path):
    spec = tmp_path / "keys.yaml"
    spec.write_text(KEYS, encoding="utf-8")
    with build_client(tmp_path / "data", spec=spec) as client:
        refused = client.get("/things")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'ApiKey header="X-Key"'
        assert "an API key in the header 'X-Key'" in refused.json()["detail"]
        assert client.get("/things", headers={"X-Key": "any"}).status_code == 200
        assert client.get("/things", params={"key": "any"}).status_code == 200
        assert client.get("/things", headers={"Cookie": "session=any"}).status_code == 200
        assert client.get("/things/1", headers={"Authorization": "Basic eDp5"}).status_code == 401
        assert client.get("/things/1", headers={"Authorization": "Bearer t"}).status_code == 404  # both schemes want a Bearer token
        assert yaml.safe_load(KEYS)["paths"]["/things"]["get"]["responses"].keys() == {"200"}  # the 401 is the engine's addition


KINDS = """
openapi: 3.0.3
info: {title: Kinds, version: "1"}
paths:
  /pets:
    get:
      operationId: listPets
      parameters: [{name: pet-type, in: query, schema: {type: string}}]
      responses: {"200": {description: ok, content: {application/json: {schema: {type: array, items: {$ref: "#/components/schemas/Pet"}}}}}}
    post:
      operationId: addPet
      requestBody: {required: true, content: {application/json: {schema: {$ref: "#/components/schemas/Pet"}}}}
      responses: {"201": {description: made, content: {application/json: {schema: {$ref: "#/components/schemas/Pet"}}}}}
  /pets/{id}:
    parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
    get:
      operationId: getPet
      responses: {"200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Pet"}}}}}
components:
  schemas:
    Pet: {type: object, properties: {id: {type: integer}, pet-type: {type: string}}}
"""


def test_a_filter_whose_name_is_no_python_name_still_filters(tmp_path):
    spec = tmp_path / "kinds.yaml"
    spec.write_text(KINDS, encoding="utf-8")
    with build_client(tmp_path / "data", spec=spec) as client:
        dog = client.post("/pets", json={"pet-type": "dog"}).json()
        client.post("/pets", json={"pet-type": "cat"})
        assert client.get("/pets", params={"pet-type": "dog"}).json() == [dog]  # connexion hands it over as pettype
