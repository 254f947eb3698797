"""Observe and break: the request journal, contract coverage, fault rules, ``Prefer: code`` and
the metrics, on the JSON file and on PostgreSQL (the ``client`` fixtures) in each service's
dialect; with several workers and instances in ``test_observe_shared.py``."""

from __future__ import annotations

import time

import orjson
import pytest
from connexion.json_schema import resolve_refs

from cms_mock import services
from cms_mock.handlers import admin
from cms_mock.settings import Settings, SettingsError
from tests.support import contract
from tests.support.app import build_client
from tests.support.data import NEW_CUSTOMER, NEW_PROFILE, sample_customers

pytestmark = pytest.mark.shared_app


SPECS = {service: contract.load(service) for service in contract.SPECS}


def journal(client, **query):
    answer = client.get("/__admin/requests", params=query)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_every_request_to_the_service_is_journaled_with_its_bodies(client):
    created = client.post("/api/customers/", json=NEW_CUSTOMER, headers={"X-Trace": "t-1"}).json()
    client.get("/api/customers/nope?verbose=1")
    client.get("/no/such/path")
    client.get("/__admin/records")  # the control plane is not journaled
    entries = journal(client)["requests"]
    assert [(e["method"], e["path"], e["operationId"], e["status"]) for e in entries] == [
        ("POST", "/api/customers/", "createCustomer", 201),
        ("GET", "/api/customers/nope", "getCustomer", 404),
        ("GET", "/no/such/path", None, 404),
    ]
    post, missing, _ = entries
    assert post["request"] == {"headers": post["request"]["headers"], "body": NEW_CUSTOMER, "truncated": False}
    assert post["request"]["headers"]["x-trace"] == "t-1"
    assert post["response"]["body"] == created
    assert post["response"]["headers"]["content-type"] == "application/json"
    assert missing["query"] == "verbose=1"
    assert missing["response"]["body"] == {"detail": "Customer with ID nope not found"}
    assert missing["request"]["body"] is None
    assert post["time"] < missing["time"]
    assert all(e["duration_ms"] >= 0 and len(e["id"]) == 32 for e in entries)
    listed = client.get("/__admin/requests")
    assert contract.problems(admin_schema("RequestList"), listed.json()) == []


def admin_schema(name: str) -> dict:
    """A schema of the control plane's document as the CMS serves it, every ``$ref`` resolved."""
    service = services.service("cms")
    spec = resolve_refs(admin.admin_spec(services.load_spec(admin.SPEC_FILE), service, service.load_spec()))
    return spec["components"]["schemas"][name]


def test_the_journal_filters_counts_and_empties(client):
    for name in ("A", "B", "C"):
        client.post("/api/customers", json={**NEW_CUSTOMER, "name": name})
    client.post("/api/customers", json={**NEW_CUSTOMER, "email": "bad"})
    client.get("/api/customers")
    assert journal(client, method="post")["total"] == 4
    assert [e["request"]["body"]["name"] for e in journal(client, operationId="createCustomer", status=201, limit=2)["requests"]] == ["B", "C"]
    assert journal(client, operationId="createCustomer", status=201, limit=2)["total"] == 3
    assert journal(client, path="/api/customers")["total"] == 5
    count = client.post("/__admin/requests/count", json={"method": "POST", "body": {"name": "B", "company": NEW_CUSTOMER["company"]}})
    assert count.json() == {"count": 1}
    assert client.post("/__admin/requests/count", json={"body": {"name": "B", "company": "other"}}).json() == {"count": 0}
    assert client.post("/__admin/requests/count", json={"status": 422}).json() == {"count": 1}
    assert client.post("/__admin/requests/count", json={}).json() == {"count": 5}
    coverage = client.get("/__admin/coverage").json()
    assert client.delete("/__admin/requests").status_code == 204
    assert journal(client) == {"requests": [], "total": 0}
    assert client.get("/__admin/coverage").json() == coverage  # the journal and coverage are counted apart


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ({"status": "600"}, ["query", "status"]),
        ({"limit": "0"}, ["query", "limit"]),
        ({"limit": "x"}, ["query", "limit"]),
        ({"method": "P O"}, ["query", "method"]),
    ],
)
def test_a_bad_journal_query_is_a_422_naming_the_parameter(client, query, loc):
    refused = client.get("/__admin/requests", params=query)
    assert refused.status_code == 422
    assert [p["loc"] for p in refused.json()["detail"]] == [loc]


def test_bodies_over_64_kib_are_kept_cut_short_as_text(client):
    big = "x" * 100_000
    client.post("/api/customers", json={**NEW_CUSTOMER, "name": big})
    (entry,) = journal(client)["requests"]
    assert entry["request"]["truncated"] is True
    assert 60_000 < len(orjson.dumps(entry["request"]["body"])) <= 64 * 1024 + 2  # its JSON form fits
    assert entry["request"]["body"].startswith('{"name":"xxx')


def test_a_body_of_control_characters_is_cut_to_fit_in_its_json_form(client):
    client.post("/api/customers", content=b"\x01" * 65_000, headers={"Content-Type": "application/json"})
    (entry,) = journal(client)["requests"]
    assert entry["status"] == 422  # not JSON: read, and refused
    assert entry["request"]["truncated"] is True
    assert len(orjson.dumps(entry["request"]["body"])) <= 64 * 1024 + 2
    assert entry["response"]["truncated"] is False  # the 422 is small


def test_the_journal_keeps_the_most_recent_journal_size_entries(tmp_path, backend):
    with build_client(tmp_path, journal_size=5, **backend) as client:
        for n in range(80):  # past PostgreSQL's trim every 64 entries
            client.get(f"/api/customers/n{n}")
        entries = journal(client)["requests"]
        assert [e["path"] for e in entries] == [f"/api/customers/n{n}" for n in range(75, 80)]


def test_journal_size_0_turns_the_journal_off_but_not_coverage(tmp_path, backend):
    with build_client(tmp_path, journal_size=0, **backend) as client:
        client.get("/api/customers")
        assert journal(client) == {"requests": [], "total": 0}
        assert operation(client.get("/__admin/coverage").json(), "listCustomers")["responses"]["200"] == 1


def operation(coverage: dict, name: str) -> dict:
    return next(op for op in coverage["operations"] if op["operationId"] == name)


def test_coverage_counts_every_declared_status_of_every_operation(client):
    client.get("/api/customers")
    client.get("/api/customers")
    client.get("/api/customers/nope")
    client.post("/api/customers", json={})
    client.get("/no/such/path")  # no operation: not coverage
    coverage = client.get("/__admin/coverage").json()
    assert contract.problems(admin_schema("Coverage"), coverage) == []
    spec_operations = [op["operationId"] for _, _, op, _ in contract.operations(SPECS["cms"])]
    assert [op["operationId"] for op in coverage["operations"]] == spec_operations
    assert operation(coverage, "listCustomers")["responses"] == {"200": 2, "304": 0, "401": 0, "413": 0, "422": 0, "500": 0, "503": 0}
    assert operation(coverage, "getCustomer")["responses"]["404"] == 1
    assert operation(coverage, "createCustomer")["responses"]["422"] == 1
    declared = sum(len(op["responses"]) for _, _, op, _ in contract.operations(SPECS["cms"]))
    assert coverage["summary"] == {"operations": {"covered": 3, "total": len(spec_operations)}, "responses": {"covered": 3, "total": declared}}
    assert coverage["undeclared"] == []
    page = client.get("/__admin/coverage", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.headers["content-type"].startswith("text/html")
    assert "Operations covered: <b>3 of 7</b>" in page.text
    assert '<td class="miss">401<br><b>0</b></td>' in page.text


def test_a_reset_clears_the_journal_coverage_and_fault_rules(client):
    client.get("/api/customers")
    client.post("/__admin/faults", json={"operationId": "getCustomer", "status": 503})
    assert client.post("/__admin/reset").status_code == 204
    assert journal(client)["total"] == 0
    assert client.get("/__admin/coverage").json()["summary"]["responses"]["covered"] == 0
    assert client.get("/__admin/faults").json() == []
    assert client.get(f"/api/customers/{sample_customers()[0]['id']}").status_code == 200


def test_a_fault_rule_answers_its_declared_error_changes_nothing_and_ends_after_times(client):
    rule = client.post("/__admin/faults", json={"operationId": "createCustomer", "status": 503, "times": 2})
    assert rule.status_code == 201
    assert contract.problems(admin_schema("FaultRule"), rule.json()) == []
    assert rule.json()["remaining"] == 2
    before = client.get("/__admin/records").json()
    for _ in range(2):
        failed = client.post("/api/customers", json=NEW_CUSTOMER)
        assert failed.status_code == 503
        assert failed.json() == {"detail": f"Injected fault: 503 Service Unavailable (fault rule {rule.json()['id']})"}
        assert contract.problems(declared_schema("cms", "/api/customers", "post", 503), failed.json()) == []
    assert client.get("/__admin/records").json() == before
    assert client.post("/api/customers", json=NEW_CUSTOMER).status_code == 201  # used up
    assert client.get("/__admin/faults").json() == [{**rule.json(), "injected": 2, "remaining": 0}]
    assert journal(client, status=503)["total"] == 2  # journaled and counted like any answer
    assert operation(client.get("/__admin/coverage").json(), "createCustomer")["responses"]["503"] == 2


def declared_schema(service: str, path: str, method: str, status: int) -> dict:
    return SPECS[service]["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]


@pytest.mark.parametrize(
    ("rule", "loc", "words"),
    [
        ({"operationId": "noSuchThing", "status": 503}, ["body", "operationId"], "its operations are getServiceInfo"),
        ({"operationId": "getCustomer", "status": 418}, ["body", "status"], "it declares 401, 404, 413, 500, 503"),
        ({"operationId": "getCustomer", "status": 422}, ["body", "status"], "it declares 401, 404, 413, 500, 503"),
        ({"operationId": "getCustomer"}, ["body"], "a rule needs a status, a delay_ms, or both"),
        ({"operationId": "getCustomer", "status": 200}, ["body", "status"], "ensure this value is greater than or equal to 400"),
        ({"operationId": "getCustomer", "status": 503, "probability": 2}, ["body", "probability"], "less than or equal to 1"),
        ({"operationId": "getCustomer", "status": 503, "when": "now"}, ["body", "when"], "extra fields not permitted"),
    ],
)
def test_a_rule_the_contract_does_not_allow_is_a_422(client, rule, loc, words):
    refused = client.post("/__admin/faults", json=rule)
    assert refused.status_code == 422
    (problem,) = refused.json()["detail"]
    assert problem["loc"] == loc
    assert words in problem["msg"]
    assert client.get("/__admin/faults").json() == []


def test_a_seeded_rule_hits_the_same_requests_every_time(tmp_path, backend):
    def pattern(run: int) -> list[int]:
        with build_client(tmp_path / str(run), **backend) as client:
            client.post("/__admin/reset")  # one database for both runs
            client.post("/__admin/faults", json={"operationId": "listCustomers", "status": 500, "probability": 0.5, "seed": 7})
            return [client.get("/api/customers").status_code for _ in range(40)]

    first = pattern(1)
    client_of_another_run = pattern(2)
    assert first == client_of_another_run
    assert 5 < first.count(500) < 35  # about half


def test_probability_0_never_hits_and_rules_are_deleted(client):
    never = client.post("/__admin/faults", json={"operationId": "getHealth", "status": 503, "probability": 0}).json()
    assert all(client.get("/health").status_code == 200 for _ in range(10))
    assert client.get("/__admin/faults").json()[0]["injected"] == 0
    assert client.delete(f"/__admin/faults/{never['id']}").status_code == 204
    gone = client.delete(f"/__admin/faults/{never['id']}")
    assert (gone.status_code, gone.json()) == (404, {"detail": f"Fault rule {never['id']} not found"})
    client.post("/__admin/faults", json={"operationId": "getHealth", "status": 503})
    assert client.delete("/__admin/faults").status_code == 204
    assert client.get("/health").status_code == 200


def test_the_health_checks_injected_503_is_its_declared_unhealthy_body(client):
    client.post("/__admin/faults", json={"operationId": "getHealth", "status": 503})
    answer = client.get("/health")
    assert answer.status_code == 503
    assert contract.problems(declared_schema("cms", "/health", "get", 503), answer.json()) == []
    assert answer.json()["reason"].startswith("Injected fault: 503")


def test_a_delay_alone_slows_the_operation_and_lets_it_answer(client):
    client.post("/__admin/faults", json={"operationId": "listCustomers", "delay_ms": 300, "times": 1})
    started = time.monotonic()
    assert client.get("/api/customers").status_code == 200
    assert time.monotonic() - started >= 0.3
    assert client.get("/__admin/faults").json()[0]["injected"] == 1


def every_declared_error(service: str):
    for method, path, operation_, item in contract.operations(SPECS[service]):
        for status in operation_["responses"]:
            if int(status) >= 400:
                yield method, contract.example_path(path, item, operation_), int(status), operation_["responses"][status]


@pytest.mark.parametrize("service", sorted(contract.SPECS))
def test_prefer_code_answers_every_declared_error_of_every_operation_in_its_schema(tmp_path, service):
    new = NEW_CUSTOMER if service == "cms" else NEW_PROFILE
    with build_client(tmp_path, service=service) as client:
        before = client.get("/__admin/records").json()
        for method, path, status, declared in every_declared_error(service):
            answer = client.request(method, path, json=new if method in ("POST", "PUT", "PATCH") else None, headers={"Prefer": f"code={status}"})
            where = f"{method} {path} {status}"
            assert answer.status_code == status, where
            assert answer.headers["preference-applied"] == f"code={status}", where
            assert contract.problems(declared["content"]["application/json"]["schema"], answer.json()) == [], where
            for name, header in declared.get("headers", {}).items():
                assert not header.get("required") or name in answer.headers, where
        assert client.get("/__admin/records").json() == before


def test_prefer_an_undeclared_code_or_anything_else_is_ignored(client):
    for prefer in ("code=418", "code=200", "return=minimal", "code=5034", "respond-async"):
        answer = client.get("/api/customers", headers={"Prefer": prefer})
        assert answer.status_code == 200, prefer
        assert "preference-applied" not in answer.headers


def test_the_profile_service_injects_in_its_dialect(profile_client):
    rule = profile_client.post("/__admin/faults", json={"operationId": "updateProfile", "status": 422}).json()
    failed = profile_client.patch("/customers/1", json={"first_name": "X"})
    injected = f"Injected fault: 422 Unprocessable Entity (fault rule {rule['id']})"
    assert (failed.status_code, failed.json()) == (422, {"error": f"Validation failed: body: {injected}"})
    assert profile_client.get("/customers/1").json()["first_name"] != "X"
    refused = profile_client.post("/__admin/faults", json={"operationId": "getProfile", "status": 409})
    assert refused.status_code == 422
    assert refused.json()["error"].startswith("Validation failed: status: is not an error status getProfile declares")


def test_metrics_count_requests_durations_records_and_faults(client):
    client.get("/api/customers")
    client.get("/api/customers", headers={"Prefer": "code=503"})
    client.post("/api/customers", json=NEW_CUSTOMER)
    page = client.get("/metrics")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain; version=")
    text = page.text
    assert 'cms_mock_http_requests_total{method="GET",operation="listCustomers",service="cms",status="200"}' in text
    assert 'cms_mock_faults_injected_total{operation="listCustomers",service="cms",status="503"}' in text
    assert 'cms_mock_http_request_duration_seconds_bucket{le="+Inf",operation="createCustomer",service="cms"}' in text
    assert 'cms_mock_records{service="cms"} 3.0' in text
    assert "/metrics" not in str(journal(client))


def test_metrics_off_is_a_404_and_journal_size_is_checked(tmp_path):
    with build_client(tmp_path, metrics=False) as client:
        missing = client.get("/metrics")
        assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    with pytest.raises(SettingsError, match="JOURNAL_SIZE must be between 0 and 100,000"):
        Settings(journal_size=100_001).check()
    with pytest.raises(SettingsError, match="JOURNAL_SIZE must be at least 0"):
        Settings.from_env({"JOURNAL_SIZE": "-1"})


def test_a_request_the_api_key_refuses_uses_up_no_rule(tmp_path):
    with build_client(tmp_path, api_key="k") as client:
        client.post("/__admin/faults", json={"operationId": "createCustomer", "status": 503, "times": 1}, headers={"X-API-Key": "k"})
        assert client.post("/api/customers", json=NEW_CUSTOMER).status_code == 401
        assert client.post("/api/customers", json=NEW_CUSTOMER, headers={"X-API-Key": "k"}).status_code == 503


def test_in_memory_the_journal_coverage_and_rules_work_and_nothing_is_written(tmp_path, monkeypatch):
    import tempfile as tempfile_module

    monkeypatch.setattr(tempfile_module, "tempdir", str(tmp_path / "no-temp"))  # a write to the temporary directory would fail
    with build_client(tmp_path / "data", in_memory=True, journal_size=2) as client:
        client.post("/__admin/faults", json={"operationId": "getCustomer", "status": 500, "times": 1})
        assert [client.get("/api/customers/x").status_code for _ in range(3)] == [500, 404, 404]
        assert [e["status"] for e in journal(client)["requests"]] == [404, 404]
        covered = operation(client.get("/__admin/coverage").json(), "getCustomer")["responses"]
        assert covered == {"200": 0, "304": 0, "401": 0, "404": 2, "413": 0, "500": 1, "503": 0}
    assert not (tmp_path / "data").exists()
    assert not (tmp_path / "no-temp").exists()
