"""Conditional requests on records: ``ETag``, ``If-None-Match`` (304),
``If-Match`` (412, checked in the store's atomic step), ``Location``; on the JSON file and on
PostgreSQL, in each service's dialect."""

from __future__ import annotations

import concurrent.futures
import re

import httpx
import pytest

from tests.support.data import NEW_CUSTOMER, NEW_PROFILE, sample_customers
from tests.support.servers import LiveServer

pytestmark = pytest.mark.shared_app


KNOWN = sample_customers()[0]["id"]


def test_the_etag_cycle_200_304_change_200_with_a_new_tag(client):
    first = client.get(f"/api/customers/{KNOWN}")
    tag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', tag)
    unchanged = client.get(f"/api/customers/{KNOWN}", headers={"If-None-Match": tag})
    assert (unchanged.status_code, unchanged.content, unchanged.headers["etag"]) == (304, b"", tag)
    assert client.get(f"/api/customers/{KNOWN}", headers={"If-None-Match": f'"other", W/{tag}'}).status_code == 304  # weak comparison
    assert client.get(f"/api/customers/{KNOWN}", headers={"If-None-Match": "*"}).status_code == 304
    changed = client.put(f"/api/customers/{KNOWN}", json={"name": "Renamed"})
    assert changed.headers["etag"] not in (tag, None)
    again = client.get(f"/api/customers/{KNOWN}", headers={"If-None-Match": tag})
    assert (again.status_code, again.json()["name"], again.headers["etag"]) == (200, "Renamed", changed.headers["etag"])


def test_created_records_carry_their_tag_and_location(client):
    made = client.post("/api/customers", json=NEW_CUSTOMER)
    read = client.get(made.headers["location"])
    assert read.headers["etag"] == made.headers["etag"]


def test_if_match_changes_only_the_version_it_names(client):
    tag = client.get(f"/api/customers/{KNOWN}").headers["etag"]
    before = client.get("/__admin/records").json()
    stale = client.put(f"/api/customers/{KNOWN}", json={"name": "X"}, headers={"If-Match": '"stale"'})
    assert stale.status_code == 412
    assert stale.json() == {"detail": f"If-Match failed: the record has changed; its ETag is now {tag}"}
    assert client.delete(f"/api/customers/{KNOWN}", headers={"If-Match": f"W/{tag}"}).status_code == 412  # a weak tag never matches
    assert client.get("/__admin/records").json() == before
    updated = client.put(f"/api/customers/{KNOWN}", json={"name": "X"}, headers={"If-Match": f'"a", {tag}'})
    assert updated.status_code == 200
    assert client.put(f"/api/customers/{KNOWN}", json={"name": "Y"}, headers={"If-Match": tag}).status_code == 412  # it moved on
    assert client.put(f"/api/customers/{KNOWN}", json={"name": "Y"}, headers={"If-Match": "*"}).status_code == 200
    assert client.delete(f"/api/customers/{KNOWN}", headers={"If-Match": updated.headers["etag"]}).status_code == 412
    current = client.get(f"/api/customers/{KNOWN}").headers["etag"]
    assert client.delete(f"/api/customers/{KNOWN}", headers={"If-Match": current}).status_code == 204
    gone = client.put(f"/api/customers/{KNOWN}", json={"name": "Z"}, headers={"If-Match": "*"})
    assert (gone.status_code, gone.json()) == (412, {"detail": "If-Match failed: no record has this id"})
    assert client.put(f"/api/customers/{KNOWN}", json={"name": "Z"}).status_code == 404  # without If-Match, still the 404


def test_the_profile_service_in_its_dialect(profile_client):
    tag = profile_client.get("/customers/1").headers["etag"]
    assert profile_client.get("/customers/1", headers={"If-None-Match": tag}).status_code == 304
    refused = profile_client.patch("/customers/1", json={"address": "2 Elm Street, Springfield"}, headers={"If-Match": '"stale"'})
    assert refused.status_code == 412
    assert refused.json() == {"error": f"If-Match failed: the record has changed; its ETag is now {tag}"}
    made = profile_client.post("/customers", json=NEW_PROFILE)
    assert made.headers["location"] == f"/customers/{made.json()['id']}"
    assert profile_client.delete(made.headers["location"], headers={"If-Match": made.headers["etag"]}).status_code == 204


@pytest.mark.live
@pytest.mark.parametrize("workers", ["1", "2"])
def test_of_clients_updating_one_record_with_one_tag_exactly_one_wins(tmp_path, backend, workers):
    env = {"DATABASE_URL": str(backend["database_url"])} if backend else {}
    with LiveServer(tmp_path / "data", "--workers", workers, env=env).start() as server:
        tag = httpx.get(f"{server.url}/api/customers/{KNOWN}").headers["etag"]

        def update(n: int) -> int:
            headers = {"If-Match": tag, "Connection": "close"}
            answer = httpx.put(f"{server.url}/api/customers/{KNOWN}", json={"name": f"Writer {n}"}, headers=headers, timeout=30)
            return answer.status_code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = sorted(pool.map(update, range(16)))
        assert statuses == [200] + [412] * 15
        assert httpx.get(f"{server.url}/api/customers/{KNOWN}").json()["name"].startswith("Writer ")
