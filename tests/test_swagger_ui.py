"""Swagger UI works as it loads: "Try it out" -> "Execute" with the form's defaults gets each
operation's declared success, in a real browser against real servers.

Swagger UI fills a parameter's field from its ``example``/``examples`` (the parameter's, its
content's or its schema's) or ``default``, preselects the first ``enum`` value of a required
one, and writes a sample into an object-typed one; a header such as ``Prefer: code=404`` or an
``If-Match`` tag filled in that way changes the answer a person gets by clicking Execute. So
no parameter but a path id may carry one (the static test below walks every operation of the
three specs, so a parameter added later cannot bring it back), and the browser test clicks
through every operation of the CMS and the profile service, every read of the control plane,
and Authorize when the service runs with ``API_KEY``.

The browser is Debian's ``chromium`` driven by Playwright (no browser download at run time);
without either the browser tests are skipped, and with ``CI=true`` they fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.app import build_client
from tests.support.contract import load, operations
from tests.support.data import NEW_CUSTOMER, NEW_PROFILE
from tests.support.servers import LiveServer
from tests.support.tools import require

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SPEC_FILES = ("openapi.yaml", "profile-openapi.yaml", "admin-openapi.yaml")
ANSWER_TIMEOUT_MS = 15_000


def prefills(parameter: dict[str, Any]) -> list[str]:
    """What Swagger UI would write into this parameter's field as the page loads."""
    found = [key for key in ("example", "examples", "default") if key in parameter]
    found += [f"content {media} {key}" for media, content in parameter.get("content", {}).items() for key in ("example", "examples") if key in content]
    schemas = [parameter.get("schema", {})]
    while schemas:  # the schema and whatever it combines (a later Swagger UI merges allOf)
        schema = schemas.pop()
        found += [f"schema {key}" for key in ("example", "default") if key in schema]
        if parameter.get("required") and "enum" in schema:
            found.append("a required enum (its first value is preselected)")
        if schema.get("type") == "object":
            found.append("an object schema (a sample is generated)")
        schemas += [member for key in ("allOf", "anyOf", "oneOf") for member in schema.get(key, [])]
    return found


@pytest.mark.parametrize("name", SPEC_FILES)
def test_no_parameter_but_a_path_id_prefills_a_value(name):
    spec = load(name)
    found = {}
    for method, path, operation, item in operations(spec):
        for parameter in [*item.get("parameters", []), *operation.get("parameters", [])]:
            if parameter["in"] != "path" and prefills(parameter):
                found[f"{method} {path} {parameter['in']} {parameter['name']}"] = prefills(parameter)
    assert found == {}


def test_the_check_sees_what_swagger_ui_would_prefill():
    assert prefills({"in": "header", "name": "Prefer", "schema": {"type": "string", "example": "code=404"}})
    assert prefills({"in": "query", "name": "limit", "schema": {"allOf": [{"type": "integer", "default": 20}]}})
    assert prefills({"in": "query", "name": "s", "required": True, "schema": {"type": "string", "enum": ["a", "b"]}})
    assert prefills({"in": "query", "name": "s", "examples": {"one": {"value": "a"}}, "schema": {"type": "string"}})
    assert not prefills({"in": "query", "name": "s", "schema": {"type": "string", "enum": ["a", "b"]}})


def security_anywhere(node: Any, where: str = "#") -> list[str]:
    if not isinstance(node, dict):
        return []
    found = [f"{where}/{key}" for key in ("security", "securitySchemes") if key in node]
    return found + [place for key, value in node.items() for place in security_anywhere(value, f"{where}/{key}")]


def without_security(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: without_security(value) for key, value in node.items() if key not in ("security", "securitySchemes")}
    return node


@pytest.mark.parametrize("prefix", ["", "/__admin"])
def test_the_page_shows_the_key_only_when_the_service_checks_one(tmp_path, prefix):
    with build_client(tmp_path / "open") as client:
        served, shown = client.get(f"{prefix}/openapi.json").json(), client.get(f"{prefix}/docs/openapi.json").json()
        page = client.get(f"{prefix}/docs").text
    assert security_anywhere(served)  # tools keep the key
    assert security_anywhere(shown) == []  # the page does not
    assert without_security(shown) == without_security(served)  # the same API otherwise
    assert f'"{prefix}/docs/openapi.json"' in page
    with build_client(tmp_path / "keyed", api_key="k") as client:
        assert client.get(f"{prefix}/docs/openapi.json").json() == client.get(f"{prefix}/openapi.json").json()


# The browser tests.


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless chromium for the module."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require("playwright", "the test extra installs it")
    if not CHROMIUM.exists():
        require(str(CHROMIUM), ".ci/run installs Debian's chromium package")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def cms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("cms") / "data").start() as server:
        yield server


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("profile") / "data", "serve", "profile").start() as server:
        yield server


def open_docs(browser: Any, url: str) -> Any:
    page = browser.new_page()
    page.goto(url)
    page.wait_for_selector(".opblock")
    return page


def execute(page: Any, tag: str, operation_id: str, path_values: dict[str, str]) -> int:
    """Expand the operation, Try it out, fill only its path ids, Execute: the status shown; then
    collapse it again (every open operation slows the page's next renders)."""
    block = page.locator(f'[id="operations-{tag}-{operation_id}"]')
    block.locator(".opblock-summary").click()
    block.locator("button.try-out__btn").click()
    for name, value in path_values.items():
        block.locator(f'tr[data-param-name="{name}"] input').fill(value)
    block.locator("button.execute").click()
    status = int(block.locator(".live-responses-table tr.response .response-col_status").inner_text(timeout=ANSWER_TIMEOUT_MS))
    block.locator(".opblock-summary").click()
    return status


def successes(operation: dict[str, Any]) -> set[int]:
    return {int(status) for status in operation["responses"] if status.startswith("2")}


def path_ids(item: dict[str, Any], operation: dict[str, Any], record_id: str) -> dict[str, str]:
    parameters = [*item.get("parameters", []), *operation.get("parameters", [])]
    return {parameter["name"]: record_id for parameter in parameters if parameter["in"] == "path"}


@pytest.mark.parametrize(
    ("service", "spec_file", "collection", "new_record"),
    [
        ("cms", "openapi.yaml", "/api/customers", NEW_CUSTOMER),
        ("profile", "profile-openapi.yaml", "/customers", NEW_PROFILE),
    ],
)
@pytest.mark.live
@pytest.mark.tools
def test_every_operation_answers_its_success_with_the_forms_defaults(request, browser, service, spec_file, collection, new_record):
    server: LiveServer = request.getfixturevalue(service)
    existing = str(httpx.get(server.url + collection).json()[0]["id"])
    doomed = str(httpx.post(server.url + collection, json=new_record).json()["id"])
    page = open_docs(browser, f"{server.url}/docs")
    assert page.locator(".authorization__btn").count() == 0  # no key asked: no padlock, no Authorize
    assert page.locator("button.authorize").count() == 0
    every = list(operations(load(spec_file)))
    answered = {}
    for method, _, operation, item in sorted(every, key=lambda found: found[0] == "DELETE"):  # DELETE last
        record_id = doomed if method == "DELETE" else existing
        status = execute(page, operation["tags"][0], operation["operationId"], path_ids(item, operation, record_id))
        answered[operation["operationId"]] = (status, successes(operation))
    page.close()
    assert {op: status for op, (status, declared) in answered.items() if status not in declared} == {}
    assert len(answered) == len(every)


@pytest.mark.live
@pytest.mark.tools
def test_every_read_of_the_control_plane_answers_200_with_the_forms_defaults(browser, cms):
    page = open_docs(browser, f"{cms.url}/__admin/docs")
    reads = [(path, operation, item) for method, path, operation, item in operations(load("admin-openapi.yaml")) if method == "GET"]
    answered = {operation["operationId"]: execute(page, operation["tags"][0], operation["operationId"], {}) for path, operation, item in reads}
    page.close()
    assert answered == {operation["operationId"]: min(successes(operation)) for _, operation, _ in reads}
    assert len(answered) >= 5


KEY = "s3cret"
KEYED = {"API_KEY": KEY, "API_KEY_READS": "true"}


def authorize(page: Any) -> None:
    """Authorize, give the key, close the dialog: every Execute from now on sends it."""
    page.locator("button.authorize").click()
    page.locator(".auth-container input").fill(KEY)
    page.locator(".auth-btn-wrapper button.authorize").click()
    page.locator(".auth-btn-wrapper button.btn-done").click()


@pytest.mark.live
@pytest.mark.tools
def test_with_an_api_key_the_page_asks_for_it_and_authorize_makes_execute_work(browser, tmp_path):
    with LiveServer(tmp_path / "data", env=KEYED).start() as server:
        existing = httpx.get(f"{server.url}/api/customers", headers={"X-API-Key": KEY}).json()[0]["id"]
        page = open_docs(browser, f"{server.url}/docs")
        assert page.locator(".authorization__btn").count() > 0  # the padlocks
        assert execute(page, "customers", "listCustomers", {}) == 401
        authorize(page)
        assert execute(page, "customers", "getCustomer", {"customer_id": existing}) == 200
        assert execute(page, "customers", "createCustomer", {}) == 201
        page.close()
        admin = open_docs(browser, f"{server.url}/__admin/docs")
        assert execute(admin, "observe", "listRequests", {}) == 401
        authorize(admin)
        assert execute(admin, "admin", "getRecords", {}) == 200
        admin.close()


@pytest.mark.live
@pytest.mark.tools
def test_with_an_api_key_authorize_makes_execute_work_on_the_profile_page(browser, tmp_path):
    with LiveServer(tmp_path / "data", "serve", "profile", env=KEYED).start() as server:
        existing = str(httpx.get(f"{server.url}/customers", headers={"X-API-Key": KEY}).json()[0]["id"])
        page = open_docs(browser, f"{server.url}/docs")
        assert page.locator(".authorization__btn").count() > 0
        assert execute(page, "customers", "listProfiles", {}) == 401
        authorize(page)
        assert execute(page, "customers", "getProfile", {"customer_id": existing}) == 200
        page.close()
