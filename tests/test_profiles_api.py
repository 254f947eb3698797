"""The Customer Profile Service: the seed's endpoint table, its rules and its error shape."""

from __future__ import annotations

import json

import httpx
import pytest

from cms_mock.stores.records import LARGEST_ID
from tests.support.app import build_client
from tests.support.contract import Contract
from tests.support.data import NEW_PROFILE
from tests.support.servers import LiveServer, MemoryServer

pytestmark = pytest.mark.shared_app


FIELDS = {"id", "first_name", "last_name", "email", "phone_number", "address", "date_of_birth", "created_at", "updated_at"}


def test_root_and_health(profile_client):
    assert profile_client.get("/").json()["name"] == "Customer Profile Service"
    assert profile_client.get("/health").json() == {"status": "healthy", "service": "Customer Profile Service", "total_customers": 3}


def test_starts_with_sample_profiles_1_to_3(profile_client):
    profiles = profile_client.get("/customers").json()
    assert [p["id"] for p in profiles] == [1, 2, 3]
    assert all(set(p) == FIELDS for p in profiles)


def test_get_by_id(profile_client):
    response = profile_client.get("/customers/2")
    assert response.status_code == 200
    assert response.json()["first_name"] == "Jane"


@pytest.mark.parametrize("bad_id", ["abc", "0", "-1", "1.5", "1e3", "%20"])
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_an_id_that_is_not_a_positive_integer_is_400(profile_client, bad_id, method):
    response = profile_client.request(method, f"/customers/{bad_id}", json={"address": "Somewhere 1"} if method == "PATCH" else None)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    assert "customer_id" in response.json()["error"] or "minimum" in response.json()["error"]


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_unknown_id_is_404(profile_client, method):
    response = profile_client.request(method, "/customers/999", json={"address": "Somewhere 1"} if method == "PATCH" else None)
    assert response.status_code == 404
    assert response.json() == {"error": "Customer with ID 999 not found"}


def test_unknown_route_is_404_in_the_error_shape(profile_client):
    response = profile_client.get("/orders/1")
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found"}


def test_patch_changes_the_allowed_fields_and_moves_updated_at(profile_client):
    before = profile_client.get("/customers/1").json()
    response = profile_client.patch("/customers/1", json={"phone_number": "+44 20 7946 0000", "address": "10 Downing St", "email": "j@example.org"})
    assert response.status_code == 200
    after = response.json()
    assert (after["phone_number"], after["address"], after["email"]) == ("+44 20 7946 0000", "10 Downing St", "j@example.org")
    assert after["updated_at"] > before["updated_at"]
    assert {k: after[k] for k in ("id", "first_name", "last_name", "date_of_birth", "created_at")} == {
        k: before[k] for k in ("id", "first_name", "last_name", "date_of_birth", "created_at")
    }
    assert profile_client.get("/customers/1").json() == after


@pytest.mark.parametrize(
    ("field", "value", "status"),
    [
        ("phone_number", "1" * 9, 422),
        ("phone_number", "1" * 10, 200),
        ("phone_number", "1" * 20, 200),
        ("phone_number", "1" * 21, 422),
        ("address", "a" * 4, 422),
        ("address", "a" * 5, 200),
        ("address", "a" * 200, 200),
        ("address", "a" * 201, 422),
        ("email", "no-at-sign", 422),
        ("email", "a@b", 200),
        ("email", None, 422),
        ("phone_number", 1234567890, 422),
    ],
)
def test_patch_boundaries(profile_client, field, value, status):
    before = profile_client.get("/customers/1").json()
    response = profile_client.patch("/customers/1", json={field: value})
    assert response.status_code == status
    if status == 422:
        assert response.json()["error"].startswith("Validation failed: ")
        assert field in response.json()["error"]
        assert profile_client.get("/customers/1").json() == before
    else:
        assert response.json()[field] == value


@pytest.mark.parametrize("field", ["first_name", "last_name", "date_of_birth", "id", "created_at", "updated_at", "nickname"])
def test_patch_of_any_other_field_is_422_naming_it(profile_client, field):
    response = profile_client.patch("/customers/1", json={field: "x"})
    assert response.status_code == 422
    assert f"{field}: extra fields not permitted" in response.json()["error"]


def test_several_bad_fields_are_named_in_one_422(profile_client):
    response = profile_client.patch("/customers/1", json={"phone_number": "123", "address": "abc", "email": "nope", "first_name": "X"})
    assert response.status_code == 422
    message = response.json()["error"]
    for field in ("phone_number", "address", "email", "first_name"):
        assert field in message


@pytest.mark.parametrize("raw", [b"{bad", b"", b"\xff", b'{"address": "abcde", "address": "fghij"}', b"[1, 2]"])
def test_malformed_json_is_400(profile_client, raw):
    response = profile_client.patch("/customers/1", content=raw, headers={"content-type": "application/json"})
    expected = 422 if raw == b"[1, 2]" else 400  # valid JSON of the wrong type is a validation error
    assert response.status_code == expected
    assert set(response.json()) == {"error"}


@pytest.mark.parametrize("raw", [None, b"", b"  "], ids=["no-body", "empty", "blank"])
def test_a_change_without_a_body_says_a_body_is_required(profile_client, raw):
    headers = {} if raw is None else {"content-type": "application/json"}
    response = profile_client.patch("/customers/1", content=raw, headers=headers)
    assert (response.status_code, response.json()) == (400, {"error": "Request body is required: send a JSON object"})


@pytest.mark.parametrize("email", ["nope", "a@b@c", "@example.com", "ann@"])
def test_an_email_without_one_at_sign_between_text_is_refused_in_words(profile_client, email):
    response = profile_client.patch("/customers/1", json={"email": email})
    assert (response.status_code, response.json()) == (
        422,
        {"error": "Validation failed: email: value is not a valid email address: it must contain one '@', with text on both sides and no control characters"},
    )


@pytest.mark.own_app
def test_create_gets_the_next_integer_id(profile_client):
    response = profile_client.post("/customers", json=NEW_PROFILE)
    assert response.status_code == 201
    profile = response.json()
    assert profile["id"] == 4
    assert {k: profile[k] for k in NEW_PROFILE} == NEW_PROFILE
    assert response.headers["location"] == "/customers/4"
    assert profile_client.get("/customers/4").json() == profile


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"date_of_birth": "1990-02-30"}, "date_of_birth"),
        ({"date_of_birth": "31/01/1990"}, "date_of_birth"),
        ({"first_name": ""}, "first_name"),
        ({"email": "x"}, "email"),
    ],
)
def test_create_validates_fields(profile_client, change, field):
    response = profile_client.post("/customers", json={**NEW_PROFILE, **change})
    assert response.status_code == 422
    assert field in response.json()["error"]


def test_create_requires_every_field(profile_client):
    response = profile_client.post("/customers", json={})
    assert response.status_code == 422
    for field in NEW_PROFILE:
        assert f"{field}: field required" in response.json()["error"]


@pytest.mark.own_app
def test_delete_then_404_and_ids_are_not_reused(profile_client):
    assert profile_client.delete("/customers/3").status_code == 204
    assert profile_client.get("/customers/3").status_code == 404
    assert profile_client.post("/customers", json=NEW_PROFILE).json()["id"] == 4
    assert profile_client.delete("/customers/4").status_code == 204
    assert profile_client.post("/customers", json=NEW_PROFILE).json()["id"] == 5


def test_profiles_persist_in_their_own_file(tmp_path):
    with build_client(tmp_path, service="profile") as client:
        client.patch("/customers/2", json={"address": "22 Acacia Avenue"})
    stored = json.loads((tmp_path / "profiles.json").read_text())
    assert list(stored) == ["1", "2", "3"]
    assert stored["2"]["address"] == "22 Acacia Avenue"
    assert not (tmp_path / "customers.json").exists()
    with build_client(tmp_path, service="profile") as client:
        assert client.get("/customers/2").json()["address"] == "22 Acacia Avenue"


def test_in_memory_writes_nothing(tmp_path):
    with build_client(tmp_path, service="profile", in_memory=True) as client:
        assert client.post("/customers", json=NEW_PROFILE).status_code == 201
        assert client.get("/health").json()["total_customers"] == 4
    assert list(tmp_path.iterdir()) == []


def test_cors_is_on(profile_client):
    assert profile_client.get("/customers/1", headers={"origin": "http://x.test"}).headers["access-control-allow-origin"] == "*"


@pytest.mark.live
@pytest.mark.parametrize("kind", [MemoryServer, LiveServer], ids=["memory", "file"])
def test_a_create_past_the_largest_id_stores_nothing_and_says_why(tmp_path, kind):
    """The limit an import keeps (2^53 - 1) is the create's too, so what the service holds
    always imports again (PostgreSQL: ``test_transfer``)."""
    with kind(tmp_path / "data", "serve", "profile").start() as server:
        largest = {"id": LARGEST_ID, **NEW_PROFILE, "created_at": "2024-01-01T00:00:00.000000", "updated_at": "2024-01-01T00:00:00.000000"}
        assert httpx.put(f"{server.url}/__admin/records", json=[largest]).status_code == 204
        for _ in range(2):
            refused = httpx.post(f"{server.url}/customers", json=NEW_PROFILE)
            assert refused.status_code == 422
            assert refused.json()["error"].startswith(f"No id is left to give: every id from 1 to {LARGEST_ID}")
            assert not Contract("profile").violations("POST", "/customers", refused)
        held = httpx.get(f"{server.url}/__admin/records").json()
        assert held == {str(LARGEST_ID): largest}
        assert httpx.put(f"{server.url}/__admin/records", json=held).status_code == 204
