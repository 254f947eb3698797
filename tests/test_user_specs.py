"""Specs written for other servers, served by ``cms-mock serve --spec``: each resource's CRUD
cycle, persistence across a restart, on the JSON file and on PostgreSQL, and error bodies in the
shape the spec declares. Every answer is judged against the spec by jsonschema_rs, a validator
the server does not use."""

from __future__ import annotations

import httpx
import pytest
import yaml

from cms_mock import cli
from tests.support.public_specs import CASES, PETSTORE, Case, Judge
from tests.support.servers import LiveServer

pytestmark = pytest.mark.live


@pytest.fixture(params=CASES, ids=[case.file for case in CASES])
def case(request):
    return request.param


@pytest.fixture
def served(tmp_path, backend, case):
    """The real command serving the case's spec, over the file store or PostgreSQL."""
    storage = ["--database-url", str(backend["database_url"])] if backend else []
    with LiveServer(tmp_path / "data", "serve", "--spec", str(case.path), "--debug", *storage, base=case.base) as server:
        server.start()
        yield server


@pytest.fixture(scope="module")
def museum_server(tmp_path_factory):
    """One museum server for the tests of its other surfaces, each from a reset (``museum``)."""
    museum = CASES[1]
    with LiveServer(tmp_path_factory.mktemp("museum") / "data", "serve", "--spec", str(museum.path), "--debug", base=museum.base) as server:
        server.start()
        yield server


@pytest.fixture
def museum(museum_server):
    """The museum server, its records, journal and fault rules back to the start state."""
    assert httpx.post(f"{museum_server.url}/__admin/reset").status_code == 204
    return museum_server


def _client(server: LiveServer, case: Case) -> httpx.Client:
    return httpx.Client(base_url=server.url + case.base, auth=case.auth)


def test_each_resource_goes_through_its_crud_cycle(served, case):
    judge = Judge(case.path)
    with _client(served, case) as client:
        judge(client.get(case.collection), case.collection)
        created = client.post(case.collection, json=case.new)
        record = judge(created, case.collection)
        key = str(record[case.id_field])
        assert record == {case.id_field: record[case.id_field], **case.new}  # what was sent, and an id made by the server
        item = case.item.replace(case.item[case.item.rindex("{") :], key)
        assert created.headers["location"] == case.base + item
        assert judge(client.get(item), case.item) == record
        assert record in judge(client.get(case.collection), case.collection)
        if case.change is not None:
            changed = judge(client.patch(item, json=case.change), case.item)
            assert changed == {**record, **case.change}
            assert judge(client.get(item), case.item) == changed
        deleted = client.delete(item)
        assert deleted.status_code == 204
        judge(deleted, case.item)
        missing = client.get(item)
        assert missing.status_code == 404
        judge(missing, case.item)
        assert key in str(missing.json())  # the body says which record is missing


def test_a_bad_body_gets_the_status_and_body_the_spec_declares_naming_every_problem(tmp_path, case):
    judge = Judge(case.path)
    with LiveServer(tmp_path / "data", "serve", "--spec", str(case.path), "--debug", base=case.base) as server, _client(server.start(), case) as client:
        before = client.get(case.collection).json()
        refused = client.post(case.collection, json=case.bad)
        assert refused.status_code == case.refused
        judge(refused, case.collection)
        said = str(refused.json())
        assert all(f"{name}:" in said for name in case.bad)
        assert all(f"{name}: field required" in said for name in case.new if name not in case.bad)
        assert client.get(case.collection).json() == before  # nothing was stored


def test_records_and_their_ids_survive_a_restart(served, case):
    with _client(served, case) as client:
        first = client.post(case.collection, json=case.new).json()
        second = client.post(case.collection, json=case.new).json()
        item = case.item[: case.item.rindex("{")]
        assert client.delete(f"{item}{second[case.id_field]}").status_code == 204
    served.stop()
    served.start()
    with _client(served, case) as client:
        assert client.get(case.collection).json() == [first]
        third = client.post(case.collection, json=case.new).json()
        assert third[case.id_field] not in (first[case.id_field], second[case.id_field])  # an id given out is never given again


def test_the_petstores_ids_are_counted_and_its_create_answers_200_as_declared(tmp_path):
    with LiveServer(tmp_path / "data", "serve", "--spec", str(PETSTORE), "--debug", base="/v2") as server, _client(server.start(), CASES[0]) as client:
        created = client.post("/pets", json={"name": "Rex"})
        assert created.status_code == 200  # what addPet declares, not 201
        assert created.json() == {"id": 1, "name": "Rex"}  # no timestamps: the spec's Pet has none
        assert client.get("/pets/7").json() == {"code": 404, "message": "Pet with ID 7 not found"}


def test_the_museums_other_operations_answer_from_its_examples(museum):
    judge = Judge(CASES[1].path)
    with _client(museum, CASES[1]) as client:
        hours = judge(client.get("/museum-hours"), "/museum-hours")
        assert hours[0] == {"date": "2023-09-11", "timeOpen": "09:00", "timeClose": "18:00"}  # GetMuseumHoursResponseExample
        ticket = client.post("/tickets", json={"ticketType": "general", "ticketDate": "2024-01-01", "email": "a@example.com"})
        assert ticket.status_code == 201
        assert judge(ticket, "/tickets")["confirmationCode"] == "ticket-general-e5e5c6-dce78"
        code = client.get("/tickets/a54a57ca-36f8-421b-a6b4-2e8f26858a4c/qr")
        assert code.headers["content-type"] == "image/png"
        assert code.content.startswith(b"\x89PNG")


def test_the_served_document_declares_the_health_check_the_engine_adds(tmp_path):
    with LiveServer(tmp_path / "data", "serve", "--spec", str(PETSTORE), base="/v2") as server:
        server.start()
        document = httpx.get(server.url + "/openapi.json").json()
        assert document["paths"]["/health"]["x-cms-mock-added"] is True
        assert document["servers"][0]["url"] == "/v2"  # this server, where the API's paths begin
        assert set(document["paths"]) == {"/pets", "/pets/{id}", "/health"}
        created = document["paths"]["/pets"]["post"]["responses"]["200"]
        assert {name for name, header in created["headers"].items() if header["x-cms-mock-added"]} == {"ETag", "Location"}
        assert (
            document["paths"]["/pets/{id}"]["delete"]["responses"]
            == yaml.safe_load(PETSTORE.read_text(encoding="utf-8"))["paths"]["/pets/{id}"]["delete"]["responses"]
        )  # a default covers every status
        health = httpx.get(server.url + "/v2/health")
        assert health.json() == {"status": "healthy", "service": "Swagger Petstore", "total_records": 0}


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"openapi": "2.0"}, "#/openapi: cms-mock serves OpenAPI 3.0 and 3.1 documents (openapi: '3.0.3' or '3.1.0'); this one is '2.0'"),
        (
            {"paths": {"/pets": {"get": {"operationId": "list", "responses": {"200": {"description": "ok"}}}}}},
            "#/paths: no resource found: a resource is a path with a GET and one path below it with a GET",
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


def test_check_says_what_it_understood_of_a_spec(capsys):
    assert cli.main(["check", "--spec", str(CASES[1].path)]) == 0
    said = capsys.readouterr().out
    assert "resource special-events: /special-events and /special-events/{eventId}" in said
    assert "keyed by eventId (a UUID v4 made by the server)" in said
    assert "answered from the spec's examples: GET /museum-hours, POST /tickets, GET /tickets/{ticketId}/qr" in said


def test_check_refuses_what_it_cannot_serve_with_status_2(tmp_path, capsys):
    path = tmp_path / "swagger.yaml"
    path.write_text("swagger: '2.0'\ninfo: {title: Old, version: '1'}\npaths: {}\n", encoding="utf-8")
    assert cli.main(["check", "--spec", str(path)]) == 2
    assert "#/openapi: cms-mock serves OpenAPI 3.0 and 3.1 documents (openapi: '3.0.3' or '3.1.0'); this one is '2.0'" in capsys.readouterr().err


def test_pages_are_numbered_where_the_list_declares_page(museum):
    """The museum's list takes ``page`` (from 1) and ``limit``: its pages and links use them."""
    with _client(museum, CASES[1]) as client:
        made = [client.post("/special-events", json={**CASES[1].new, "name": f"Event {n}"}).json() for n in range(3)]
        second = client.get("/special-events", params={"limit": 2, "page": 2})
        assert second.json() == made[2:]
        assert second.headers["x-total-count"] == "3"
        assert 'limit=2&page=1>; rel="first"' in second.headers["link"]
        assert client.get("/special-events").json() == made  # the spec's default limit, 10, on page 1


def test_an_operation_secured_by_the_spec_needs_credentials_of_its_kind_and_takes_any(museum):
    judge = Judge(CASES[1].path)
    url = museum.url + CASES[1].base
    refused = httpx.post(f"{url}/special-events", json=CASES[1].new)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Basic realm="cms-mock"'
    assert refused.headers["content-type"] == "application/problem+json"  # the body the served document adds for it
    assert "Authorization: Basic" in refused.json()["detail"]
    assert httpx.get(f"{url}/special-events", auth=CASES[1].auth).json() == []  # nothing was stored
    bearer = httpx.get(f"{url}/special-events", headers={"Authorization": "Bearer x"})
    assert bearer.status_code == 401  # credentials, but not of the kind the spec names
    missing = httpx.delete(f"{url}/special-events/3be6453c-03eb-4357-ae5a-984a0e574a54")
    assert missing.status_code == 401
    assert judge(missing, "/special-events/{eventId}") == {"title": missing.json()["title"]}  # the 401 deleteSpecialEvent declares
    assert httpx.get(f"{url}/museum-hours", auth=("a", "b")).status_code == 200


BOOKS = """
openapi: 3.1.0
info: {title: Books, version: "1"}
servers: [{url: "http://127.0.0.1:{port}/{version}", variables: {port: {default: "9000"}, version: {default: v1}}}]
paths:
  /books:
    get:
      operationId: listBooks
      responses:
        200:
          description: The books.
          content: {application/json: {schema: {type: array, items: {$ref: "#/components/schemas/Book"}}}}
    post:
      operationId: createBook
      requestBody: {required: true, content: {application/json: {schema: {$ref: "#/components/schemas/Book"}}}}
      responses:
        201: {description: Made., content: {application/json: {schema: {$ref: "#/components/schemas/Book"}}}}
  /books/{isbn}:
    parameters: [{name: isbn, in: path, required: true, schema: {type: string}}]
    get:
      operationId: getBook
      responses:
        200: {description: The book., content: {application/json: {schema: {$ref: "#/components/schemas/Book"}}}}
    patch:
      operationId: changeBook
      requestBody: {required: true, content: {application/json: {schema: {$ref: "#/components/schemas/Book"}}}}
      responses:
        200: {description: Changed., content: {application/json: {schema: {$ref: "#/components/schemas/Book"}}}}
components:
  schemas:
    Book:
      type: object
      additionalProperties: false
      required: [title]
      properties:
        isbn: {type: string, format: uuid}
        title: {type: string}
        pages: {type: [integer, "null"]}
        created_at: {type: string, format: date-time}
        updated_at: {type: string, format: date-time}
"""


def test_a_hand_written_spec_with_its_own_habits_is_served_as_written(tmp_path):
    """Unquoted response codes, a servers URL with variables, an id field named by the path, and
    RFC 3339 timestamps the server keeps (``--debug``: every answer is checked against the spec)."""
    spec = tmp_path / "books.yaml"
    spec.write_text(BOOKS, encoding="utf-8")
    with (
        LiveServer(tmp_path / "data", "serve", "--spec", str(spec), "--debug", base="/v1") as server,
        httpx.Client(base_url=server.start().url + "/v1") as client,
    ):
        made = client.post("/books", json={"isbn": "not mine to choose", "title": "Dune", "created_at": "1965-08-01T00:00:00Z"})
        assert made.status_code == 422  # isbn: not a UUID
        made = client.post("/books", json={"title": "Dune", "pages": 412})
        assert made.status_code == 201
        book = made.json()
        assert book["created_at"].endswith("Z")
        assert book["created_at"] == book["updated_at"]
        assert client.post("/books", json={"title": "Dune", "pages": 412.0}).status_code == 422  # 2020-12 would take it; an integer type would not
        changed = client.patch(f"/books/{book['isbn']}", json={"title": "Dune", "pages": None, "isbn": "00000000-0000-4000-8000-000000000000"})
        assert changed.status_code == 200, changed.text
        assert changed.json()["isbn"] == book["isbn"]  # the id is the server's: never changed by a request
        assert changed.json()["pages"] is None
        assert changed.json()["updated_at"] > book["updated_at"]
        assert list(client.get("/books").json()) == [changed.json()]


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        (
            BOOKS.replace("isbn: {type: string, format: uuid}", "code: {type: string}"),
            "has neither 'isbn' (the item path's parameter) nor 'id'",
        ),
        (BOOKS.replace("version: {default: v1}", "version: {enum: [v1]}"), "#/servers/0/url: names the variable {version}"),
        (BOOKS.replace("description: The books.", "description: no"), "#/paths/~1books/get/responses/200: breaks the OpenAPI schema"),
        ("", "this one is 'empty'"),
        (BOOKS.replace("info:", "x-cms-mock: detail\ninfo:"), "#/x-cms-mock: must be a mapping"),
        (BOOKS.replace("info:", "x-cms-mock: {errors: detail}\ninfo:"), "errors: detail needs an ErrorMessage schema"),
        (BOOKS.replace("  /books:\n", "  /books:\n    x-cms-mock: {start: examples}\n"), "start: examples needs the list's 200 to have an example"),
        (BOOKS.replace('items: {$ref: "#/components/schemas/Book"}', 'items: {$ref: "#/components/schemas/Nowhere"}'), "cannot be served"),
        (BOOKS.replace("http://127.0.0.1:{port}", "http://127.0.0.1:99999"), "cannot be served"),
    ],
)
def test_a_spec_that_cannot_be_served_is_refused_in_one_line(tmp_path, capsys, spec, said):
    path = tmp_path / "api.yaml"
    path.write_text(spec, encoding="utf-8")
    assert cli.main(["check", "--spec", str(path)]) == 2
    assert said in capsys.readouterr().err


def test_a_spec_that_is_not_utf8_is_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "api.yaml"
    path.write_bytes(b"\xff\xfeopenapi: 3.1.0")
    assert cli.main(["check", "--spec", str(path)]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err


def test_a_fault_rule_answers_in_the_body_the_operation_declares(museum):
    judge = Judge(CASES[1].path)
    with _client(museum, CASES[1]) as client:
        assert httpx.post(f"{museum.url}/__admin/faults", json={"operationId": "createSpecialEvent", "status": 404}).status_code == 201
        injected = client.post("/special-events", json=CASES[1].new)
        assert injected.status_code == 404
        assert "Injected fault" in judge(injected, "/special-events")["title"]
