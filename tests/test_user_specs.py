"""Specs written for other servers, served by ``cms-mock serve --spec``: each resource's CRUD
cycle, persistence across a restart, on the JSON file and on PostgreSQL, and error bodies in the
shape the spec declares. Every answer is judged against the spec by jsonschema_rs, a validator
the server does not use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
import yaml

from cms_mock import cli
from tests.support import ROOT
from tests.support.servers import LiveServer

pytestmark = pytest.mark.live

SPECS = ROOT / "tests" / "specs"
PETSTORE = SPECS / "petstore-expanded.yaml"


class Judge:
    """Checks an answer against what the spec declares for its operation and status."""

    def __init__(self, path: Path, base: str) -> None:
        self.spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        self.base = base

    def __call__(self, response: httpx.Response, template: str) -> Any:
        operation = self.spec["paths"][template][response.request.method.lower()]
        responses = operation["responses"]
        status = str(response.status_code)
        assert status in responses or "default" in responses, f"{response.request.method} {template} answered an undeclared {status}"
        declared = responses.get(status, responses.get("default"))
        content = declared.get("content")
        if not content:
            assert response.content == b""
            return None
        media_type = response.headers["content-type"].split(";")[0]
        assert media_type in content, f"{media_type} is not declared for {status}"
        body = response.json()
        schema = {**content[media_type]["schema"], "components": self.spec.get("components", {})}
        jsonschema_rs.validator_for(schema).validate(body)
        return body


@pytest.fixture
def petstore(tmp_path, backend):
    storage = ["--database-url", str(backend["database_url"])] if backend else []
    with LiveServer(tmp_path / "data", "serve", "--spec", str(PETSTORE), "--debug", *storage, base="/v2") as server:
        server.start()
        yield server


def test_a_resource_of_a_public_spec_goes_through_its_crud_cycle(petstore):
    judge = Judge(PETSTORE, "/v2")
    with httpx.Client(base_url=petstore.url + "/v2") as client:
        assert judge(client.get("/pets"), "/pets") == []
        created = client.post("/pets", json={"name": "Rex", "tag": "dog"})
        assert created.status_code == 200  # what the spec declares for addPet, not 201
        pet = judge(created, "/pets")
        assert pet == {"id": 1, "name": "Rex", "tag": "dog"}  # no timestamps: the spec's Pet has none
        assert created.headers["location"] == "/v2/pets/1"
        assert judge(client.get("/pets/1"), "/pets/{id}") == pet
        assert judge(client.get("/pets"), "/pets") == [pet]
        deleted = client.delete("/pets/1")
        assert deleted.status_code == 204
        judge(deleted, "/pets/{id}")
        missing = client.get("/pets/1")
        assert missing.status_code == 404
        assert judge(missing, "/pets/{id}") == {"code": 404, "message": "Pet with ID 1 not found"}


def test_a_bad_body_gets_the_error_body_the_spec_declares_naming_every_problem(petstore):
    judge = Judge(PETSTORE, "/v2")
    with httpx.Client(base_url=petstore.url + "/v2") as client:
        refused = client.post("/pets", json={"tag": 5})
        assert refused.status_code == 422  # the spec declares neither 400 nor 422: 422, in its default body
        body = judge(refused, "/pets")
        assert body["code"] == 422
        assert "name: field required" in body["message"]
        assert "tag: str type expected" in body["message"]
        assert judge(client.get("/pets"), "/pets") == []  # nothing was stored


def test_records_and_their_ids_survive_a_restart(petstore):
    with httpx.Client(base_url=petstore.url + "/v2") as client:
        first = client.post("/pets", json={"name": "Rex"}).json()
        second = client.post("/pets", json={"name": "Tom", "tag": "cat"}).json()
        assert client.delete(f"/pets/{second['id']}").status_code == 204
    petstore.stop()
    petstore.start()
    with httpx.Client(base_url=petstore.url + "/v2") as client:
        assert client.get("/pets").json() == [first]
        assert client.post("/pets", json={"name": "Max"}).json()["id"] == 3  # an id given out is never given again


def test_the_served_document_declares_the_health_check_the_engine_adds(petstore):
    document = httpx.get(petstore.url + "/openapi.json").json()
    assert document["paths"]["/health"]["x-cms-mock-added"] is True
    assert document["servers"][0]["url"] == "/v2"  # this server, where the API's paths begin
    assert set(document["paths"]) == {"/pets", "/pets/{id}", "/health"}
    health = httpx.get(petstore.url + "/v2/health")
    assert health.json() == {"status": "healthy", "service": "Swagger Petstore", "total_records": 0}


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"openapi": "3.1.0"}, "#/openapi: cms-mock serves OpenAPI 3.0 documents; this one is '3.1.0'"),
        (
            {"paths": {"/pets": {"get": {"operationId": "list", "responses": {"200": {"description": "ok"}}}}}},
            "#/paths/~1pets: a collection needs one item path",
        ),
    ],
)
def test_a_spec_the_engine_cannot_serve_is_refused_at_start_with_where_and_why(tmp_path, capsys, change, said):
    spec = {**yaml.safe_load(PETSTORE.read_text(encoding="utf-8")), **change}
    path = tmp_path / "api.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    assert cli.main(["serve", "--spec", str(path), "--data-dir", str(tmp_path / "data")]) == 2
    assert said in capsys.readouterr().err


def test_a_spec_names_no_built_in_service_beside_it(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["serve", "profile", "--spec", str(PETSTORE)])
    assert "--spec serves the spec it names" in capsys.readouterr().err
