"""Service info, health, docs, the served spec, CORS, and the errors no handler raises."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from tests.support.app import build_client
from tests.support.data import NEW_CUSTOMER

pytestmark = pytest.mark.shared_app


def test_root_gives_name_version_and_links(client):
    info = client.get("/").json()
    assert info == {"name": "CMS Mock Service", "version": "1.0.0", "docs": "/docs", "health": "/health", "openapi": "/openapi.json"}
    for link in ("docs", "health", "openapi"):
        assert client.get(info[link]).status_code == 200


def test_docs_is_swagger_ui_pointing_at_the_spec(client):
    page = client.get("/docs/")
    assert page.status_code == 200
    assert "swagger-ui" in page.text
    assert client.get("/docs/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(("path", "parse"), [("/openapi.json", json.loads), ("/openapi.yaml", yaml.safe_load)])
def test_the_spec_is_served_as_written_with_this_server_first(client, path, parse):
    """Refs kept (a client generated from the URL gets the spec's models), and a usable server."""
    with open("openapi.yaml", encoding="utf-8") as handle:
        source = yaml.safe_load(handle)
    served = client.get(path)
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("application/json" if path.endswith("json") else "application/yaml")
    document = parse(served.text)
    assert document["servers"] == [{"url": "/", "description": "The server that served this document"}, *source["servers"]]
    assert {**document, "servers": source["servers"]} == source
    assert '"$ref"' in served.text or "$ref:" in served.text


def test_each_service_has_its_own_docs_title_and_a_favicon(client, profile_client):
    assert "<title>CMS Mock Service - API documentation</title>" in client.get("/docs/").text
    assert "<title>Customer Profile Service - API documentation</title>" in profile_client.get("/docs/").text
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/png"
    assert icon.content.startswith(b"\x89PNG")


def test_a_browser_at_the_root_is_sent_to_the_docs_and_json_clients_get_the_info(client):
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
    response = client.get("/", headers={"accept": browser}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/docs")
    for accept in ("*/*", "application/json", "application/json, text/html;q=0.5", ""):
        assert client.get("/", headers={"accept": accept}).json()["name"] == "CMS Mock Service"


@pytest.mark.parametrize("path", ["/health/", "/api/customers/e20a1b70-67c9-4fb4-9f6d-56ba97a87c14/", "/openapi.json/", "/docs/nope"])
def test_nothing_redirects_an_unknown_path_is_404(client, path):
    response = client.get(path, headers={"host": "evil.example"}, follow_redirects=False)
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json() == {"detail": "Not Found"}


def test_health_is_503_with_a_reason_when_the_data_directory_is_gone(tmp_path):
    data_dir = tmp_path / "data"
    with build_client(data_dir) as client:
        shutil.rmtree(data_dir)
        response = client.get("/health")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unhealthy"
        assert body["service"] == "CMS Mock Service"
        assert str(data_dir) in body["reason"]


def test_a_write_that_cannot_be_made_durable_is_503_and_changes_nothing(tmp_path):
    data_dir = tmp_path / "data"
    with build_client(data_dir) as client:
        before = client.get("/api/customers/").json()
        shutil.rmtree(data_dir)
        response = client.post("/api/customers/", json=NEW_CUSTOMER)
        assert response.status_code == 503
        assert response.json()["detail"].startswith("Storage unavailable:")
        assert client.put(f"/api/customers/{before[0]['id']}", json={"name": "Z"}).status_code == 503
        assert client.delete(f"/api/customers/{before[0]['id']}").status_code == 503
        data_dir.mkdir()
        assert client.get("/api/customers/").json() == before
        assert client.post("/api/customers/", json=NEW_CUSTOMER).status_code == 201
        assert client.get("/health").json()["status"] == "healthy"


def test_unknown_route_is_404_in_the_contract_shape(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


@pytest.mark.parametrize(("method", "path"), [("PATCH", "/api/customers/"), ("DELETE", "/api/customers/"), ("POST", "/health"), ("PATCH", "/api/customers/x")])
def test_wrong_method_is_405_with_allow(client, method, path):
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}
    assert response.headers["allow"]


def test_an_unexpected_error_is_a_bare_500_and_is_logged(tmp_path, caplog, monkeypatch):
    with build_client(tmp_path, debug=False) as client:
        store = client.app_state["runtime"].store

        def broken() -> bytes:
            raise RuntimeError("secret internals")

        monkeypatch.setattr(store, "list", broken)
        response = client.get("/api/customers/")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}
    assert "secret internals" not in response.text
    assert "secret internals" in caplog.text


def test_cors_allows_every_origin_by_default(client):
    response = client.get("/api/customers/", headers={"origin": "http://example.test"})
    assert response.headers["access-control-allow-origin"] == "*"


def test_cors_preflight_is_answered(client):
    response = client.options(
        "/api/customers/",
        headers={"origin": "http://example.test", "access-control-request-method": "POST", "access-control-request-headers": "content-type"},
    )
    assert response.status_code == 200
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "content-type" in response.headers["access-control-allow-headers"].lower()


def test_cors_origins_restrict_for_real(tmp_path):
    with build_client(tmp_path, cors_origins=("http://app.test",)) as client:
        allowed = client.get("/health", headers={"origin": "http://app.test"})
        other = client.get("/health", headers={"origin": "http://evil.test"})
        preflight = client.options("/api/customers/", headers={"origin": "http://evil.test", "access-control-request-method": "POST"})
    assert allowed.headers["access-control-allow-origin"] == "http://app.test"
    assert "access-control-allow-origin" not in other.headers
    assert preflight.status_code == 400


def test_without_api_key_everything_is_open(client):
    assert client.post("/api/customers/", json=NEW_CUSTOMER).status_code == 201


def test_with_api_key_writes_need_it_reads_do_not(tmp_path):
    with build_client(tmp_path, api_key="s3cret") as client:
        missing = client.post("/api/customers/", json=NEW_CUSTOMER)
        wrong = client.post("/api/customers/", json=NEW_CUSTOMER, headers={"X-API-Key": "s3cre"})
        right = client.post("/api/customers/", json=NEW_CUSTOMER, headers={"X-API-Key": "s3cret"})
        customer_id = right.json()["id"]
        assert client.delete(f"/api/customers/{customer_id}").status_code == 401
        assert client.put(f"/api/customers/{customer_id}", json={}).status_code == 401
        assert client.get(f"/api/customers/{customer_id}").status_code == 200
        assert client.get("/health").json()["total_customers"] == 3
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 201)
    assert missing.json() == {"detail": "Missing or invalid API key"}
    assert missing.headers["www-authenticate"] == 'ApiKey header="X-API-Key"'


def test_with_api_key_reads_reads_need_it_too_but_health_does_not(tmp_path):
    with build_client(tmp_path, api_key="k", api_key_reads=True) as client:
        assert client.get("/api/customers/").status_code == 401
        assert client.get("/api/customers/", headers={"X-API-Key": "k"}).status_code == 200
        assert client.get("/health").status_code == 200
        assert client.get("/").status_code == 200
        assert client.get("/openapi.json").json()["components"]["securitySchemes"]["ApiKeyAuth"]["name"] == "X-API-Key"


def test_profile_service_api_key_errors_in_its_shape(tmp_path):
    with build_client(tmp_path, service="profile", api_key="k") as client:
        response = client.patch("/customers/1", json={"address": "Somewhere 1"})
    assert response.status_code == 401
    assert response.json() == {"error": "Missing or invalid API key"}
