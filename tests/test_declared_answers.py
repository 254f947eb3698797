"""Every answer a live server gives on a declared operation is declared there, with its schema.

For each operation of each spec, requests that provoke every error path a client can reach
(missing, mixed-case and multipart content types, bodies on GETs, oversize bodies, trailing
slashes, bad ids, bad JSON) go to a real uvicorn. Each answer's status must be one the
operation declares, its body must match the declared schema (judged by ``jsonschema_rs``,
not by the server's validator), and a path the spec does not declare must be a 404 in the
contract's shape, never a redirect. Afterwards every stored record still matches its schema.
"""

from __future__ import annotations

import collections
import json
import re
import subprocess
import time
from typing import Any

import httpx
import pytest

from tests.support import ROOT
from tests.support.contract import SPECS, Contract, example_path, operations, problems
from tests.support.ports import free_port
from tests.support.servers import LiveServer

pytestmark = pytest.mark.live

MAX_BODY = 1024 * 1024
CONTENT_TYPES = [
    None,
    "application/json",
    "Application/JSON",
    "APPLICATION/JSON; charset=UTF-8",
    "application/vnd.api+json",
    "Application/Merge-Patch+JSON",
    "text/json",
    "multipart/form-data",
    "multipart/form-data; boundary=x",
    "text/plain",
    "application/x-www-form-urlencoded",
]
BAD_BODIES = [b"", b"{bad", b"[]", b"null", b'"text"', b'{"a": 1, "a": 2}', b'{"x": NaN}', b"\xff\xfe"]
BROWSER = "a browser's Accept"
LENIENT = {"content type None", "content type Application/JSON", "content type APPLICATION/JSON; charset=UTF-8"}
"""Bodies the server reads as JSON by choice (the spec's description says so) where Prism may not."""
BAD_IDS = ["nope", "0", "-1", "1.5", "abc", "9" * 30, "%20", "a" * 300, "%C3%A9", "%00"]


def cases(spec: dict[str, Any]) -> list[tuple[str, str, str, dict[str, str], bytes | None]]:
    """``(label, method, path, headers, body)``: the provocations for every declared operation."""
    found = []
    for method, template, operation, item in operations(spec):
        paths = [template, *item.get("x-aliases", [])]
        path = example_path(template, item, operation)
        media = operation.get("requestBody", {}).get("content", {}).get("application/json")
        body = httpx.Request("POST", "/", json=media["example"]).content if media else b'{"x": 1}'
        for content_type in CONTENT_TYPES:
            headers = {"content-type": content_type} if content_type else {}
            found.append((f"content type {content_type}", method, path, headers, body))
        if media:
            found += [(f"bad body {raw!r}", method, path, {"content-type": "application/json"}, raw) for raw in BAD_BODIES]
        found.append(("oversize body", method, path, {"content-type": "application/json"}, b" " * (MAX_BODY + 1)))
        if path != "/":
            found += [("slash added", method, p.rstrip("/") + "/", {}, None) for p in {*paths, path} if "{" not in p or p == path]
            found.append(("slash removed", method, path.rstrip("/"), {"content-type": "application/json"}, body))
        if method == "GET":
            found.append((BROWSER, method, path, {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, None))
        found.append(("undeclared method", "OPTIONS", path, {}, None))
        if "{" in template:
            for bad in BAD_IDS:
                found.append((f"bad id {bad}", method, re.sub(r"\{\w+\}", bad, template), {"content-type": "application/json"}, body))
    return found


@pytest.fixture(scope="module", params=sorted(SPECS))
def served(request, tmp_path_factory):
    service = request.param
    with LiveServer(tmp_path_factory.mktemp(service) / "data", "serve", service).start() as server:
        yield Contract(service), server


def exercise(contract: Contract, url: str) -> tuple[set[int], list[str], Any]:
    """Every provocation against ``url``: the statuses seen, what broke the spec, and the stored records."""
    statuses: collections.Counter[int] = collections.Counter()
    broken = []
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as client:
        for label, method, path, headers, body in cases(contract.spec):
            response = client.request(method, path, headers=headers, content=body)
            statuses[response.status_code] += 1
            broken += [f"{method} {path} [{label}]: {v}" for v in contract.violations(method, path, response)]
            created = response.status_code == 201 and response.headers.get("location", "").endswith(f"/{response.json()['id']}")
            if "location" in response.headers and response.headers["location"] != "/docs" and not created:
                broken.append(f"{method} {path} [{label}]: redirects to {response.headers['location']}")
        records = client.get(contract.listing).json()
    print(dict(statuses))
    return set(statuses), broken, records


def test_every_answer_on_a_declared_operation_is_declared_with_its_schema(served):
    contract, server = served
    statuses, broken, records = exercise(contract, server.url)
    assert broken == []
    assert problems(contract.listing_schema, records) == []
    assert {200, 201, 303, 404, 405, 413, 415, 422} <= statuses  # the provocations reached every kind of answer


@pytest.mark.parametrize("service", sorted(SPECS))
def test_with_an_api_key_every_answer_is_still_declared(tmp_path, service):
    """With ``API_KEY`` and ``API_KEY_READS`` and no key sent, the secured operations answer their declared 401."""
    with LiveServer(tmp_path / "data", "serve", service, env={"API_KEY": "s3cret", "API_KEY_READS": "true"}).start() as server:
        contract = Contract(service)
        statuses, broken, _ = exercise(contract, server.url)
    assert broken == []
    assert 401 in statuses


@pytest.fixture(scope="module")
def prism(served, node_bin, tmp_path_factory):
    """Stoplight Prism's validating proxy in front of the live server: it reports every request
    and response that breaks the spec in an ``sl-violations`` header, by its own reading of it."""
    contract, server = served
    port = free_port()
    log = tmp_path_factory.mktemp("prism") / "prism.log"
    command = [node_bin / "prism", "proxy", ROOT / SPECS[contract.service], server.url, "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as output:
        process = subprocess.Popen([str(c) for c in command], stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/health", timeout=2)
            break
        except httpx.TransportError:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.mark.tools
def test_prism_finds_no_answer_breaking_the_spec_and_agrees_on_every_request(served, prism):
    """Prism judges each answer, and each request: what it finds valid the server must not refuse
    (415, 422) and what it finds invalid the server must not accept, but for the documented
    leniencies (an untyped or mixed-case JSON body)."""
    contract, _ = served
    broken = []
    checked = 0
    with httpx.Client(base_url=prism, timeout=30) as client:
        for label, method, path, headers, body in cases(contract.spec):
            if not contract.declared(method, path) or label == BROWSER:
                continue  # Prism knows no aliases, answers undeclared paths itself, and follows a 303 itself
            if (method, body) == ("PATCH", b"null"):
                continue  # Prism 5.14.2 never answers a PATCH whose body is null (the server's 422 is checked above)
            response = client.request(method, path, headers=headers, content=body)
            checked += 1
            violations = json.loads(response.headers.get("sl-violations", "[]"))
            answer = [v["message"] for v in violations if v["location"][0] == "response"]
            request = [v["message"] for v in violations if v["location"][0] == "request"]
            where = f"{method} {path} [{label}] -> {response.status_code}"
            if answer:
                broken.append(f"{where}: the answer breaks the spec: {answer}")
            if not request and response.status_code in (415, 422):
                broken.append(f"{where}: the server refused a request Prism finds valid: {response.text[:200]}")
            if request and response.status_code < 300 and label not in LENIENT:
                broken.append(f"{where}: the server accepted a request Prism finds invalid: {request}")
    assert checked > 50
    assert broken == []
