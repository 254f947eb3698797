"""The control plane under ``/__admin`` (``admin-openapi.yaml``), on the JSON file and on
PostgreSQL (the ``client`` fixtures), in each service's dialect."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx
import pytest

from cms_mock.stores.records import STRING_ID_RULE
from tests.support.app import build_client
from tests.support.data import NEW_CUSTOMER, NEW_PROFILE, sample_customers
from tests.support.fuzzing import schemathesis_finds_nothing
from tests.support.servers import LiveServer
from tests.support.writers import Writers

pytestmark = pytest.mark.shared_app


STAMP = "2024-01-01T00:00:00.000000"


@pytest.mark.own_app
def test_reset_puts_the_samples_back_durably(client, tmp_path, backend):
    client.post("/api/customers", json=NEW_CUSTOMER)
    client.delete(f"/api/customers/{sample_customers()[0]['id']}")
    assert client.post("/__admin/reset").status_code == 204
    assert client.get("/api/customers").json() == sample_customers()
    with build_client(tmp_path, **backend) as again:  # a restart over the same store
        assert again.get("/api/customers").json() == sample_customers()


def test_records_are_the_data_files_object_in_creation_order(client):
    created = client.post("/api/customers", json=NEW_CUSTOMER).json()
    records = client.get("/__admin/records").json()
    assert list(records) == [c["id"] for c in sample_customers()] + [created["id"]]
    assert list(records.values()) == client.get("/api/customers").json()


def test_put_records_takes_an_object_keyed_by_id_with_given_ids_and_timestamps(client):
    given = {"fixed-1": {"id": "fixed-1", **NEW_CUSTOMER, "created_at": STAMP, "updated_at": STAMP}, "fixed-2": {**NEW_CUSTOMER, "name": "Two"}}
    assert client.put("/__admin/records", json=given).status_code == 204
    listed = client.get("/api/customers").json()
    assert [c["id"] for c in listed] == ["fixed-1", "fixed-2"]  # a left-out id comes from the key
    assert listed[0] == given["fixed-1"]
    assert listed[1]["created_at"] == listed[1]["updated_at"] > STAMP  # made as on create
    assert client.get("/api/customers/fixed-2").json()["name"] == "Two"


def test_put_records_takes_an_array_and_makes_what_is_left_out(client):
    assert client.put("/__admin/records", json=[{**NEW_CUSTOMER, "name": "A"}, {"id": "b", **NEW_CUSTOMER, "name": "B"}]).status_code == 204
    first, second = client.get("/api/customers").json()
    assert (first["name"], second["id"]) == ("A", "b")
    assert re.fullmatch(r"[0-9a-f-]{36}", first["id"])


def test_an_invalid_record_is_a_422_saying_where_and_nothing_changes(client):
    before = client.get("/__admin/records").json()
    refused = client.put("/__admin/records", json=[{**NEW_CUSTOMER}, {**NEW_CUSTOMER, "email": "nope", "name": ""}])
    assert refused.status_code == 422
    assert {tuple(p["loc"]) for p in refused.json()["detail"]} == {("body", 1, "email"), ("body", 1, "name")}
    for body, loc in (
        ({"a": {"id": "b", **NEW_CUSTOMER}}, ["body", "a", "id"]),
        ([{"id": "same", **NEW_CUSTOMER}, {"id": "same", **NEW_CUSTOMER}], ["body", 1, "id"]),
        ([{"id": "a/b", **NEW_CUSTOMER}], ["body", 0, "id"]),
        ([{**NEW_CUSTOMER, "updated_at": "yesterday"}], ["body", 0, "updated_at"]),
    ):
        refused = client.put("/__admin/records", json=body)
        assert refused.status_code == 422, body
        assert [p["loc"] for p in refused.json()["detail"]] == [loc]
    for key in ("a/b", "x" * 257, "tab\there"):  # the id's pattern is made in code, with its words
        refused = client.put("/__admin/records", json=[{"id": key, **NEW_CUSTOMER}])
        assert refused.json()["detail"] == [{"loc": ["body", 0, "id"], "msg": STRING_ID_RULE, "type": "value_error.str.regex"}]
    assert client.get("/__admin/records").json() == before


@pytest.mark.own_app
def test_a_given_profile_id_stays_exact_in_every_client_and_ids_made_after_it_fit_int64(profile_client):
    largest = 2**53 - 1
    assert profile_client.put("/__admin/records", json=[{"id": largest + 1, **NEW_PROFILE}]).status_code == 422
    assert profile_client.put("/__admin/records", json=[{"id": largest, **NEW_PROFILE}]).status_code == 204
    assert profile_client.post("/customers", json=NEW_PROFILE).status_code == 422  # no id is left: creates keep the same limit


def test_a_body_of_a_million_problems_lists_the_first_hundred(client):
    """A 1 MiB array of empty records once held a worker for 100 s building a 130 MB answer."""
    refused = client.put("/__admin/records", content=b"[" + b",".join([b"{}"] * 262_000) + b"]", headers={"Content-Type": "application/json"})
    assert refused.status_code == 422
    assert len(refused.json()["detail"]) == 100
    assert refused.json()["detail"][0] == {"loc": ["body", 0, "name"], "msg": "field required", "type": "value_error.missing"}


@pytest.mark.own_app
def test_snapshots_save_list_restore_and_delete(client, tmp_path, backend):
    made = client.put("/__admin/snapshots/start")
    assert made.status_code == 201
    assert made.json()["name"] == "start"
    assert made.json()["records"] == 2
    client.post("/api/customers", json=NEW_CUSTOMER)
    replaced = client.put("/__admin/snapshots/start")
    assert replaced.status_code == 200
    assert replaced.json()["records"] == 3
    client.put("/__admin/snapshots/v.2_b-c")
    assert [s["name"] for s in client.get("/__admin/snapshots").json()] == ["start", "v.2_b-c"]
    three = client.get("/__admin/records").json()
    client.post("/__admin/reset")
    assert client.post("/__admin/snapshots/start/restore").status_code == 204
    assert client.get("/__admin/records").json() == three
    with build_client(tmp_path, **backend) as again:  # snapshots are as durable as the records
        assert [s["name"] for s in again.get("/__admin/snapshots").json()] == ["start", "v.2_b-c"]
        assert again.delete("/__admin/snapshots/start").status_code == 204
        assert again.delete("/__admin/snapshots/start").json() == {"detail": "Snapshot start not found"}
        assert again.post("/__admin/snapshots/start/restore").status_code == 404


@pytest.mark.parametrize("name", ["a b", "x" * 65, "é", "semi;colon"])
def test_a_snapshot_name_outside_the_rule_is_a_422(client, name):
    refused = client.put(f"/__admin/snapshots/{name}")
    assert refused.status_code == 422
    words = "must be 1 to 64 letters, digits, dots, underscores or hyphens"  # the parameter's x-error, never its regular expression
    assert refused.json()["detail"] == [{"loc": ["path", "name"], "msg": words, "type": "value_error.str.regex"}]


@pytest.mark.own_app
def test_the_profile_service_answers_in_its_dialect_and_keeps_ids_counting(profile_client):
    assert profile_client.put("/__admin/records", json={"7": {**NEW_PROFILE, "created_at": STAMP, "updated_at": STAMP}}).status_code == 204
    assert [p["id"] for p in profile_client.get("/customers").json()] == [7]
    assert profile_client.post("/customers", json=NEW_PROFILE).json()["id"] == 8
    refused = profile_client.put("/__admin/records", json={"x": NEW_PROFILE})
    assert refused.status_code == 422
    assert refused.json() == {"error": "Validation failed: x.id: must be an integer from 1 to 9007199254740991"}
    assert profile_client.post("/__admin/snapshots/none/restore").json() == {"error": "Snapshot none not found"}
    profile_client.post("/__admin/reset")
    assert profile_client.post("/customers", json=NEW_PROFILE).json()["id"] == 9  # never back to one given out


def test_the_control_plane_serves_its_own_document_and_page(client):
    document = client.get("/__admin/openapi.json").json()
    assert document["servers"][0]["url"] == "/__admin"
    assert document["components"]["schemas"]["Record"] == {"$ref": "#/components/schemas/Customer"}
    assert "/__admin/reset" not in client.get("/openapi.json").json()["paths"]  # not in the service's spec
    page = client.get("/__admin/docs")
    assert page.status_code == 200
    assert '"/__admin/docs/openapi.json"' in page.text


def test_off_the_control_plane_is_404_and_with_a_key_every_call_needs_it(tmp_path):
    with build_client(tmp_path / "a", admin_api=False) as off:
        assert off.post("/__admin/reset").status_code == 404
        assert off.get("/__admin/openapi.json").status_code == 404
    with build_client(tmp_path / "b", api_key="k") as keyed:
        assert keyed.get("/__admin/records").status_code == 401  # reads too, unlike the service's
        assert keyed.get("/__admin/records", headers={"X-API-Key": "k"}).status_code == 200
        assert keyed.get("/api/customers").status_code == 200


@pytest.mark.live
def test_fixtures_are_what_a_reset_puts_back_and_a_bad_file_stops_the_start(tmp_path):
    fixtures = tmp_path / "fixtures.json"
    fixtures.write_text(json.dumps({"f1": {"id": "f1", **NEW_CUSTOMER, "created_at": STAMP, "updated_at": STAMP}}))
    with build_client(tmp_path / "data", fixtures=fixtures) as client:
        client.post("/__admin/reset")
        assert [c["id"] for c in client.get("/api/customers").json()] == ["f1"]
    fixtures.write_text('{"f1": {"id": "f1"}}')
    refused = subprocess.run(
        [sys.executable, "-m", "cms_mock", "--fixtures", str(fixtures), "--data-dir", str(tmp_path / "d")], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2
    assert "record 'f1': name: field required" in refused.stderr


@pytest.mark.live
def test_a_reset_through_one_worker_is_what_every_worker_serves(tmp_path, backend):
    env = {"DATABASE_URL": str(backend["database_url"])} if backend else {}
    with LiveServer(tmp_path / "data", "--workers", "2", env=env).start() as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for _ in range(10):
                http.post("/api/customers", json=NEW_CUSTOMER)
            assert http.post("/__admin/reset").status_code == 204
            seen = {tuple(c["id"] for c in http.get("/api/customers", headers={"Connection": "close"}).json()) for _ in range(20)}
        assert seen == {tuple(c["id"] for c in sample_customers())}


@pytest.mark.live
@pytest.mark.fuzz
@pytest.mark.parametrize("service", ["cms", "profile"])
def test_schemathesis_finds_nothing_in_the_control_plane(tmp_path, service):
    """Every check but one: ``PUT /records`` has rules across a body that OpenAPI 3.0 cannot
    state (an object's key is its record's id; ids are unique), so schema-valid bodies that break
    them are rightly refused (422, declared); ``positive_data_acceptance`` would call that a failure."""
    with LiveServer(tmp_path / "data", "serve", service).start() as server:
        schemathesis_finds_nothing(f"{server.url}/__admin/openapi.json", f"{server.url}/__admin", "--exclude-checks", "positive_data_acceptance")


@pytest.mark.live
def test_snapshots_saved_under_writes_from_two_workers_lose_no_acknowledged_write(tmp_path, backend):
    """A snapshot is taken by the writer that holds the store's lock, never beside it."""
    env = {"DATABASE_URL": str(backend["database_url"])} if backend else {}
    with LiveServer(tmp_path / "data", "--workers", "2", env=env).start() as server:
        with Writers(server.url, threads=4) as writers, httpx.Client(base_url=server.url, timeout=30) as http:
            saved = [http.put(f"/__admin/snapshots/s{n % 3}").status_code for n in range(30)]
        assert set(saved) <= {200, 201}
        stored = http_records(server.url)
        assert len(writers.acknowledged) > 20
        for record in writers.acknowledged:
            assert stored[record["id"]] == record
        assert {s["name"] for s in httpx.get(f"{server.url}/__admin/snapshots").json()} == {"s0", "s1", "s2"}


def http_records(url: str) -> dict:
    return httpx.get(f"{url}/__admin/records", timeout=30).json()


def test_given_timestamps_must_be_real_times_in_order_with_room_to_move_forward(client):
    before = client.get("/__admin/records").json()
    body = {
        "a": {**NEW_CUSTOMER, "created_at": "2026-02-30T25:61:61.000000", "updated_at": "0000-00-00T00:00:00.000000"},
        "b": {**NEW_CUSTOMER, "created_at": STAMP, "updated_at": "2023-12-31T23:59:59.999999"},
        "c": {**NEW_CUSTOMER, "updated_at": "9999-12-31T23:59:59.999999"},
    }
    refused = client.put("/__admin/records", json=body)
    assert refused.status_code == 422
    assert [(p["loc"], p["msg"]) for p in refused.json()["detail"]] == [
        (["body", "a", "created_at"], "is not a real time: day is out of range for month"),
        (["body", "a", "updated_at"], "is not a real time: year 0 is out of range"),
        (["body", "b", "updated_at"], f"must not be before created_at ({STAMP})"),
        (["body", "c", "updated_at"], "is the last time there is (9999-12-31T23:59:59.999999): updated_at must have room to move forward"),
    ]
    assert client.get("/__admin/records").json() == before


@pytest.mark.own_app
def test_left_out_profile_ids_past_the_largest_are_refused_and_change_nothing(profile_client):
    near = {"id": 2**53 - 1, **NEW_PROFILE}
    refused = profile_client.put("/__admin/records", json=[near, NEW_PROFILE])
    assert refused.status_code == 422
    words = f"every id from 1 to {2**53 - 1} (2^53 - 1, the largest exact in every JSON client) has been given out"
    assert refused.json() == {"error": f"Validation failed: 1.id: no id is left to give: {words}"}
    assert [p["id"] for p in profile_client.get("/customers").json()] == [1, 2, 3]
    assert profile_client.post("/customers", json=NEW_PROFILE).json()["id"] == 4


@pytest.mark.live
def test_fixtures_with_an_impossible_time_stop_the_start_naming_the_record_and_field(tmp_path):
    fixtures = tmp_path / "fixtures.json"
    fixtures.write_text(json.dumps({"f1": {"id": "f1", **NEW_CUSTOMER, "created_at": STAMP, "updated_at": "2026-02-30T00:00:00.000000"}}))
    refused = subprocess.run(
        [sys.executable, "-m", "cms_mock", "--fixtures", str(fixtures), "--data-dir", str(tmp_path / "d")], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2
    assert "record 'f1': updated_at: is not a real time: day is out of range for month" in refused.stderr
