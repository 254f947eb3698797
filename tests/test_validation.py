"""422s in the seed's shape: every field rule, every problem of a body listed at once."""

from __future__ import annotations

import httpx
import pytest

from cms_mock.errors import FieldError
from cms_mock.handlers import admin
from cms_mock.openapi.patterns import check_patterns
from cms_mock.openapi.problems import collect_errors
from cms_mock.openapi.validators import RequestValidator
from cms_mock.services import SERVICES, load_spec, service
from tests.support.app import build_client
from tests.support.data import NEW_CUSTOMER, NEW_PROFILE

pytestmark = pytest.mark.shared_app


ENUM_MSG = "value is not a valid enumeration member; permitted: 'active', 'inactive'"


def error(field: str, msg: str, type_: str) -> dict[str, object]:
    return {"loc": ["body", field], "msg": msg, "type": type_}


# (what is sent, the one error expected): each row is a rule from the seed or the spec.
FIELD_RULES = [
    ({"email": "not-an-email"}, error("email", "value is not a valid email address", "value_error.email")),
    ({"email": "a@b"}, error("email", "value is not a valid email address", "value_error.email")),
    ({"email": "a@@example.com"}, error("email", "value is not a valid email address", "value_error.email")),
    ({"email": "x" * 250 + "@example.com"}, error("email", "ensure this value has at most 254 characters", "value_error.any_str.max_length")),
    # The Email schema's description lists these as refused; each is a reason a client's validator would balk.
    ({"email": "josé@example.com"}, error("email", "value is not a valid email address", "value_error.email")),
    ({"email": "a@localhost"}, error("email", "value is not a valid email address", "value_error.email")),
    ({"email": "a..b@example.com"}, error("email", "value is not a valid email address", "value_error.email")),
    ({"email": '"a b"@example.com'}, error("email", "value is not a valid email address", "value_error.email")),
    ({"email": "a@-x.com"}, error("email", "value is not a valid email address", "value_error.email")),
    ({"email": "a@example.com\n"}, error("email", "value is not a valid email address", "value_error.email")),
    ({"name": "John\n"}, error("name", "must not contain control characters (line breaks, tabs, NUL)", "value_error.str.regex")),
    ({"status": "deleted"}, error("status", ENUM_MSG, "type_error.enum")),
    ({"status": "ACTIVE"}, error("status", ENUM_MSG, "type_error.enum")),
    ({"name": ""}, error("name", "ensure this value has at least 1 characters", "value_error.any_str.min_length")),
    ({"address": ""}, error("address", "ensure this value has at least 1 characters", "value_error.any_str.min_length")),
    ({"company": ""}, error("company", "ensure this value has at least 1 characters", "value_error.any_str.min_length")),
    ({"phone": ""}, error("phone", "ensure this value has at least 1 characters", "value_error.any_str.min_length")),
    ({"name": "n" * 201}, error("name", "ensure this value has at most 200 characters", "value_error.any_str.max_length")),
    ({"address": "a" * 501}, error("address", "ensure this value has at most 500 characters", "value_error.any_str.max_length")),
    ({"phone": "1" * 51}, error("phone", "ensure this value has at most 50 characters", "value_error.any_str.max_length")),
    ({"name": None}, error("name", "none is not an allowed value", "type_error.none.not_allowed")),
    ({"status": None}, error("status", "none is not an allowed value", "type_error.none.not_allowed")),
    ({"name": 42}, error("name", "str type expected", "type_error.str")),
    ({"status": 1}, error("status", "str type expected", "type_error.str")),
    ({"company": ["Tech"]}, error("company", "str type expected", "type_error.str")),
]


@pytest.mark.parametrize(("change", "expected"), FIELD_RULES)
def test_create_rejects_a_broken_field(client, change, expected):
    response = client.post("/api/customers/", json={**NEW_CUSTOMER, **change})
    assert response.status_code == 422
    assert response.json() == {"detail": [expected]}
    assert client.get("/health").json()["total_customers"] == 2


@pytest.mark.parametrize(("change", "expected"), FIELD_RULES)
def test_update_rejects_a_broken_field(client, change, expected):
    customer = client.post("/api/customers/", json=NEW_CUSTOMER).json()
    response = client.put(f"/api/customers/{customer['id']}", json=change)
    assert response.status_code == 422
    assert response.json() == {"detail": [expected]}
    assert client.get(f"/api/customers/{customer['id']}").json() == customer


@pytest.mark.parametrize("missing", ["name", "email", "phone", "address", "company"])
def test_create_requires_each_field(client, missing):
    body = {k: v for k, v in NEW_CUSTOMER.items() if k != missing}
    response = client.post("/api/customers/", json=body)
    assert response.status_code == 422
    assert response.json() == {"detail": [error(missing, "field required", "value_error.missing")]}


def test_every_invalid_field_is_listed_in_schema_order(client):
    response = client.post("/api/customers/", json={"email": "nope", "status": "gone", "company": ""})
    assert response.status_code == 422
    assert response.json()["detail"] == [
        error("name", "field required", "value_error.missing"),
        error("email", "value is not a valid email address", "value_error.email"),
        error("phone", "field required", "value_error.missing"),
        error("address", "field required", "value_error.missing"),
        error("company", "ensure this value has at least 1 characters", "value_error.any_str.min_length"),
        error("status", ENUM_MSG, "type_error.enum"),
    ]


@pytest.mark.parametrize(
    ("email"),
    [
        "john.doe@example.com",
        "first.last+tag@sub.example.co.uk",
        "o'brien+tag@mail.example.org",
        "x@0.test",  # RFC 2606's testing domain: a mock's data is test data
        "qa@shop.example",
        "!#$%&'*+/=?^_`{|}~-@x.io",
        "a@" + "b" * 63 + ".com",
    ],
)
def test_the_email_rule_accepts_what_its_description_says(client, email):
    assert client.post("/api/customers/", json={**NEW_CUSTOMER, "email": email}).status_code == 201


# Bodies that are not a JSON object: each answers 422 at loc ["body"] and stores nothing.
BODY_PROBLEMS = [
    (b"", "value_error.missing"),
    (b"   ", "value_error.missing"),
    (b"{bad json", "value_error.jsondecode"),
    (b'{"name": "A",}', "value_error.jsondecode"),
    (b"\xff\xfe{}", "value_error.jsondecode"),
    (b'{"name": NaN}', "value_error.jsondecode"),
    (b'{"name": "A", "name": "B"}', "value_error.jsondecode"),
    (b"[]", "type_error.dict"),
    (b'"a string"', "type_error.dict"),
    (b"null", "type_error.dict"),
    (b"42", "type_error.dict"),
]


@pytest.mark.parametrize(("raw", "type_"), BODY_PROBLEMS)
@pytest.mark.parametrize("method", ["post", "put"])
def test_a_body_that_is_not_an_object_is_422_at_body(client, raw, type_, method):
    path = "/api/customers/" if method == "post" else "/api/customers/e20a1b70-67c9-4fb4-9f6d-56ba97a87c14"
    before = client.get("/api/customers/").json()
    response = client.request(method.upper(), path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body"]
    assert problem["type"] == type_
    assert problem["msg"]
    assert client.get("/api/customers/").json() == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_wrong_content_type_is_415(client, content_type):
    response = client.post("/api/customers/", content=b"name=A", headers={"content-type": content_type})
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/json"
    assert content_type in response.json()["detail"]
    assert client.get("/health").json()["total_customers"] == 2


JSON_TYPES = [None, "application/json; charset=utf-8", "Application/JSON", "APPLICATION/JSON; charset=UTF-8", "application/vnd.api+json"]


@pytest.mark.parametrize("content_type", JSON_TYPES)
def test_a_body_of_any_json_type_or_none_is_validated_then_stored(client, content_type):
    """A mixed-case type once skipped validation (an empty record was stored) and a missing one was a 500."""
    headers = {"content-type": content_type} if content_type else {}
    empty = client.post("/api/customers", content=b"{}", headers=headers)
    assert empty.status_code == 422
    assert [e["loc"] for e in empty.json()["detail"]] == [["body", f] for f in ("name", "email", "phone", "address", "company")]
    valid = client.post("/api/customers", content=httpx.Request("POST", "/", json=NEW_CUSTOMER).content, headers=headers)
    assert valid.status_code == 201
    assert client.get("/health").json()["total_customers"] == 3


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=x", "text/plain", "Application/JSON"])
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_an_operation_without_a_body_ignores_the_body_and_its_type(client, method, content_type):
    response = client.request(method, "/api/customers/e20a1b70-67c9-4fb4-9f6d-56ba97a87c14", content=b"--x\r\n", headers={"content-type": content_type})
    assert response.status_code == (200 if method == "GET" else 204)


def test_a_value_over_its_max_length_is_never_searched_by_its_pattern():
    """Cheap checks first: a megabyte in one field once cost 280 ms in the email check."""
    schema = {"type": "string", "maxLength": 5, "pattern": "^a+$"}
    assert [e.validator for e in RequestValidator(schema).iter_errors("b" * 10)] == ["maxLength"]
    assert [e.validator for e in RequestValidator(schema).iter_errors("bb")] == ["pattern"]


@pytest.mark.parametrize("name", list(SERVICES))
def test_every_pattern_served_has_words_for_a_person(name):
    """A value that does not match a pattern is refused in the spec's words (``x-error``), never
    with the regular expression itself, which says how to check the value, not what is wrong.
    Every start checks it (``check_patterns``), in the service's spec and in its control plane
    with the schemas made in code (a given record's id)."""
    chosen = service(name)
    spec = chosen.load_spec()
    check_patterns(spec)
    check_patterns(admin.admin_spec(load_spec(admin.SPEC_FILE), chosen, spec))
    with pytest.raises(ValueError, match=r"pattern '\^\[a-z\]\+\$' has no x-error"):
        check_patterns({"components": {"schemas": {"Code": {"type": "string", "pattern": "^[a-z]+$"}}}})


@pytest.mark.parametrize(("service", "path"), [("cms", "/api/customers/"), ("profile", "/customers")])
def test_no_refusal_quotes_a_regular_expression(tmp_path, service, path):
    """Every value that breaks a pattern, in the body and in the query, through the real app."""
    bodies = {"cms": {**NEW_CUSTOMER, "name": "A\tB", "address": "x\ny"}, "profile": {**NEW_PROFILE, "email": "nope", "date_of_birth": "31/01/1990"}}
    with build_client(tmp_path, service=service) as client:
        for answer in (client.post(path, json=bodies[service]), client.get(f"{path}?q=a%00b&sort=nosuchfield")):
            assert answer.status_code == 422
            body = answer.json()
            messages = [body["error"]] if service == "profile" else [problem["msg"] for problem in body["detail"]]
            assert len(messages) == 2 or "; " in messages[0]
            assert not [message for message in messages if "regex" in message or "^" in message], messages


def test_a_value_of_one_of_two_types_is_judged_by_the_branch_of_its_type():
    """Each problem at its own place, not one "valid under none of the given schemas" for the whole body."""
    schema = {"oneOf": [{"type": "object", "additionalProperties": {"type": "string"}}, {"type": "array", "items": {"type": "string"}}]}
    validator = RequestValidator(schema)
    assert collect_errors(validator, schema, {"a": 1, "b": "x"}) == [FieldError(("body", "a"), "str type expected", "type_error.str")]
    assert collect_errors(validator, schema, ["x", 2]) == [FieldError(("body", 1), "str type expected", "type_error.str")]
    assert [problem.type for problem in collect_errors(validator, schema, 5)] == ["value_error.oneOf"]
