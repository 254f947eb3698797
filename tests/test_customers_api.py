"""The CMS customer API: every endpoint, status code and body the seed documents."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.support.app import build_client
from tests.support.data import NEW_CUSTOMER, write_customers

pytestmark = pytest.mark.shared_app


TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$")
FIELDS = {"id", "name", "email", "phone", "address", "company", "status", "created_at", "updated_at"}


def test_list_starts_with_the_two_sample_customers(client):
    response = client.get("/api/customers/")
    assert response.status_code == 200
    customers = response.json()
    assert [c["name"] for c in customers] == ["John Doe", "Jane Smith"]
    assert all(set(c) == FIELDS for c in customers)


@pytest.mark.parametrize("path", ["/api/customers/", "/api/customers"])
def test_collection_works_with_and_without_trailing_slash(client, path):
    created = client.post(path, json=NEW_CUSTOMER)
    assert created.status_code == 201
    listed = client.get(path)
    assert listed.status_code == 200
    assert created.json()["id"] in {c["id"] for c in listed.json()}


def test_create_returns_the_record_with_server_made_fields(client):
    response = client.post("/api/customers/", json=NEW_CUSTOMER)
    assert response.status_code == 201
    customer = response.json()
    assert set(customer) == FIELDS
    assert uuid.UUID(customer["id"]).version == 4
    assert TIMESTAMP.match(customer["created_at"])
    assert customer["created_at"] == customer["updated_at"]
    assert {k: customer[k] for k in NEW_CUSTOMER} == NEW_CUSTOMER
    assert response.headers["location"] == f"/api/customers/{customer['id']}"  # the declared path, not the alias posted to
    assert client.get(response.headers["location"]).json() == customer


def test_create_defaults_status_to_active(client):
    body = {k: v for k, v in NEW_CUSTOMER.items() if k != "status"}
    assert client.post("/api/customers/", json=body).json()["status"] == "active"


def test_create_ignores_unknown_fields_and_server_made_ones(client):
    body = {**NEW_CUSTOMER, "id": "not-mine", "created_at": "1999-01-01T00:00:00.000000", "nickname": "Al"}
    customer = client.post("/api/customers/", json=body).json()
    assert customer["id"] != "not-mine"
    assert customer["created_at"] != "1999-01-01T00:00:00.000000"
    assert "nickname" not in customer
    assert client.get(f"/api/customers/{customer['id']}").json() == customer


def test_get_by_id(client):
    customer = client.post("/api/customers/", json=NEW_CUSTOMER).json()
    response = client.get(f"/api/customers/{customer['id']}")
    assert response.status_code == 200
    assert response.json() == customer


@pytest.mark.parametrize("customer_id", ["7c9e6679-7425-40de-944b-e07fc1f90ae7", "abc123", "1", "%20", "%00"])
@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_unknown_id_is_404_with_the_seed_message(client, customer_id, method):
    kwargs = {"json": {"name": "X"}} if method == "put" else {}
    response = getattr(client, method)(f"/api/customers/{customer_id}", **kwargs)
    assert response.status_code == 404
    shown = customer_id.replace("%20", " ").replace("%00", "\x00")  # PostgreSQL's text cannot hold NUL: still a 404
    assert response.json() == {"detail": f"Customer with ID {shown} not found"}


def test_put_changes_only_the_fields_sent_and_moves_updated_at(client):
    customer = client.post("/api/customers/", json=NEW_CUSTOMER).json()
    response = client.put(f"/api/customers/{customer['id']}", json={"name": "Alice J. Johnson", "status": "inactive"})
    assert response.status_code == 200
    updated = response.json()
    assert updated["name"] == "Alice J. Johnson"
    assert updated["status"] == "inactive"
    unchanged = FIELDS - {"name", "status", "updated_at"}
    assert {k: updated[k] for k in unchanged} == {k: customer[k] for k in unchanged}
    assert updated["updated_at"] > customer["updated_at"]
    assert client.get(f"/api/customers/{customer['id']}").json() == updated


def test_put_with_empty_object_only_moves_updated_at(client):
    customer = client.post("/api/customers/", json=NEW_CUSTOMER).json()
    updated = client.put(f"/api/customers/{customer['id']}", json={}).json()
    assert updated["updated_at"] > customer["updated_at"]
    assert {k: v for k, v in updated.items() if k != "updated_at"} == {k: v for k, v in customer.items() if k != "updated_at"}


def test_put_never_takes_id_or_timestamps_from_the_body(client):
    customer = client.post("/api/customers/", json=NEW_CUSTOMER).json()
    body = {"id": "other", "created_at": "1999-01-01T00:00:00.000000", "updated_at": "1999-01-01T00:00:00.000000", "mood": "happy"}
    updated = client.put(f"/api/customers/{customer['id']}", json=body).json()
    assert updated["id"] == customer["id"]
    assert updated["created_at"] == customer["created_at"]
    assert updated["updated_at"] > customer["updated_at"]
    assert "mood" not in updated


def test_successive_updates_keep_updated_at_strictly_increasing(client):
    customer_id = client.post("/api/customers/", json=NEW_CUSTOMER).json()["id"]
    stamps = [client.put(f"/api/customers/{customer_id}", json={"phone": str(i)}).json()["updated_at"] for i in range(20)]
    assert stamps == sorted(set(stamps))


def test_delete_answers_204_with_empty_body_then_404(client):
    customer_id = client.post("/api/customers/", json=NEW_CUSTOMER).json()["id"]
    response = client.delete(f"/api/customers/{customer_id}")
    assert response.status_code == 204
    assert response.content == b""
    assert client.get(f"/api/customers/{customer_id}").status_code == 404
    assert client.delete(f"/api/customers/{customer_id}").status_code == 404
    assert customer_id not in {c["id"] for c in client.get("/api/customers/").json()}


def test_list_reflects_every_change_in_creation_order(client):
    ids = [client.post("/api/customers/", json={**NEW_CUSTOMER, "name": f"C{i}"}).json()["id"] for i in range(3)]
    client.delete(f"/api/customers/{ids[1]}")
    client.put(f"/api/customers/{ids[0]}", json={"name": "First"})
    names = [c["name"] for c in client.get("/api/customers/").json()]
    assert names == ["John Doe", "Jane Smith", "First", "C2"]


def test_health_counts_customers(client):
    assert client.get("/health").json() == {"status": "healthy", "service": "CMS Mock Service", "total_customers": 2}
    client.post("/api/customers/", json=NEW_CUSTOMER)
    assert client.get("/health").json()["total_customers"] == 3


def test_a_large_list_is_streamed_whole_with_its_length(tmp_path):
    """Over 1 MiB the list goes out in slices; the client still gets one exact document."""
    write_customers(tmp_path, 5000)
    with build_client(tmp_path) as client:
        response = client.get("/api/customers/")
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content) > 1024 * 1024
    customers = response.json()
    assert len(customers) == 5000
    assert customers[4999]["name"] == "Customer 4999"
