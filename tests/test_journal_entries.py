"""What a journal entry keeps of what clients send, on a real server: every answer whole whatever
the journal can keep, entries bounded in bytes as stored and marked where cut, the body of an
answer a fault gave, numbers as sent (on the JSON file's journal and ``--in-memory``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cms_mock import exactjson
from cms_mock.http import journal_entry
from tests.support.app import build_client
from tests.support.data import NEW_CUSTOMER
from tests.support.servers import LiveServer, MemoryServer

BIG = 123456789012345678901234567890
"""Past 64 bits: what orjson would read as a float."""


@pytest.fixture(params=["file", "memory"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    """A CMS on the JSON file store (its journal in files) or ``--in-memory`` (in memory)."""
    live = (LiveServer if request.param == "file" else MemoryServer)(tmp_path / "data").start()
    yield live
    live.stop()


def entries(server: LiveServer, **query: Any) -> list[dict[str, Any]]:
    answer = httpx.get(f"{server.url}/__admin/requests", params=query)
    assert answer.status_code == 200, answer.text
    listed: list[dict[str, Any]] = exactjson.loads(answer.content)["requests"]
    return listed


def depth(value: Any) -> tuple[int, Any]:
    """How deep arrays are nested in ``value`` (the first item of each), and what is innermost."""
    levels = 0
    while isinstance(value, list):
        levels += 1
        value = value[0] if value else None
    return levels, value


@pytest.mark.live
def test_a_body_nested_deeper_than_the_journal_keeps_is_answered_whole_and_kept_cut(server):
    deep = "[" * 800 + "]" * 800  # far past what orjson writes (254 levels), within what the service reads
    sent = json.dumps(NEW_CUSTOMER)[:-1] + f', "extra": {deep}}}'
    before = len(httpx.get(f"{server.url}/api/customers/").json())
    answer = httpx.post(f"{server.url}/api/customers/", content=sent, headers={"Content-Type": "application/json"})
    assert answer.status_code == 201
    assert answer.json()["email"] == NEW_CUSTOMER["email"]  # the body arrived whole
    assert len(httpx.get(f"{server.url}/api/customers/").json()) == before + 1  # stored once
    (entry,) = entries(server, method="POST")
    assert entry["status"] == 201
    assert entry["request"]["truncated"] is True
    kept = entry["request"]["body"]
    assert kept["name"] == NEW_CUSTOMER["name"]
    assert depth(kept["extra"]) == (journal_entry.BODY_DEPTH - 1, None)  # the object is one level, the arrays the rest
    assert entry["response"] == {"headers": entry["response"]["headers"], "body": answer.json(), "truncated": False}


@pytest.mark.live
def test_an_entry_is_bounded_in_bytes_as_stored_headers_path_and_query_too(server):
    numbers = ("[" + ",".join(["1E15"] * 13_000) + "]").encode()  # 65,001 bytes: 18 each, written out
    assert len(numbers) == 65_001
    many = {f"x-h{n:04}": "v" for n in range(1_900)}
    answer = httpx.put(
        f"{server.url}/api/customers/{'p' * 12_000}",
        params={"q": "y" * 12_000},
        content=numbers,
        headers={**many, "Content-Type": "application/json"},
    )
    assert answer.status_code == 422  # read, and refused: not an object
    (entry,) = entries(server, method="PUT")
    request = entry["request"]
    assert request["truncated"] is True
    assert request["body"].startswith("[1E15,1E15")  # kept as its text: as written out it would not fit
    assert len(exactjson.dumps(entry)) <= journal_entry.ENTRY_LIMIT
    assert len(exactjson.dumps(request["body"])) <= journal_entry.BODY_LIMIT + 2
    assert len(exactjson.dumps(request["headers"])) <= journal_entry.HEADERS_LIMIT
    assert 500 < len(request["headers"]) < 1_900  # the first that fit
    assert request["headers"]["host"]
    assert len(exactjson.dumps(entry["path"])) <= journal_entry.TEXT_LIMIT
    assert entry["path"].startswith("/api/customers/ppp")
    assert len(exactjson.dumps(entry["query"])) <= journal_entry.TEXT_LIMIT
    assert entry["response"]["truncated"] is False


@pytest.mark.live
def test_a_json_body_that_fits_is_kept_as_its_value_with_numbers_exact(server):
    sent = {**NEW_CUSTOMER, "n": BIG, "m": -(2**70), "f": 1.5, "u": 2**64 - 1}
    answer = httpx.post(f"{server.url}/api/customers/", content=json.dumps(sent), headers={"Content-Type": "application/json"})
    assert answer.status_code == 201
    (entry,) = entries(server, method="POST")
    assert entry["request"] == {"headers": entry["request"]["headers"], "body": sent, "truncated": False}
    assert type(entry["request"]["body"]["n"]) is int


@pytest.mark.live
def test_an_injected_answer_journals_the_body_the_client_sent(server):
    rule = httpx.post(f"{server.url}/__admin/faults", json={"operationId": "createCustomer", "status": 500, "times": 1})
    assert rule.status_code == 201
    first = {**NEW_CUSTOMER, "email": "first@example.com"}
    second = {**NEW_CUSTOMER, "email": "second@example.com"}
    assert httpx.post(f"{server.url}/api/customers/", json=first).status_code == 500  # the rule
    assert httpx.post(f"{server.url}/api/customers/", json=first).status_code == 201
    assert httpx.post(f"{server.url}/api/customers/", json=second, headers={"Prefer": "code=503"}).status_code == 503
    assert [(entry["status"], entry["request"]["body"]) for entry in entries(server, method="POST")] == [(500, first), (201, first), (503, second)]
    count = httpx.post(f"{server.url}/__admin/requests/count", json={"body": {"email": "first@example.com"}})
    assert count.json() == {"count": 2}


@pytest.mark.live
def test_a_chunked_body_over_the_limit_is_refused_before_a_rule_is_used(server):
    rule = httpx.post(f"{server.url}/__admin/faults", json={"operationId": "createCustomer", "status": 500, "times": 1}).json()

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 65_536  # 2.5 MiB in all, no Content-Length: counted as it streams

    answer = httpx.post(f"{server.url}/api/customers/", content=chunks(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    (listed,) = httpx.get(f"{server.url}/__admin/faults").json()
    assert (listed["id"], listed["injected"], listed["remaining"]) == (rule["id"], 0, 1)


def test_a_failure_to_record_is_logged_and_the_answer_sent_whole(tmp_path, caplog, monkeypatch):
    def broken(self: object, entry: object) -> None:
        raise RuntimeError("the journal broke")

    with build_client(tmp_path) as client:
        monkeypatch.setattr("cms_mock.state.local.LocalState.record", broken)
        with caplog.at_level(logging.ERROR, logger="cms_mock.http.recorder"):
            answer = client.post("/api/customers/", json=NEW_CUSTOMER)
    assert answer.status_code == 201
    assert answer.json()["email"] == NEW_CUSTOMER["email"]
    assert "a request could not be recorded" in caplog.text
    assert "the journal broke" in caplog.text


@pytest.mark.parametrize(
    "document",
    [
        b'{"a":[1,-2,1.5,"\\u00e9",true,null],"b":{}}',
        b"[18446744073709551615,-9223372036854775808]",
        b'{"big":123456789012345678901234567890,"neg":-98765432109876543210987,"in":"12345678901234567890123"}',
        b"[" * 600 + b"123456789012345678901" + b"]" * 600,
    ],
)
def test_exactjson_reads_and_writes_every_number_exactly(document):
    value = exactjson.loads(document)
    assert value == json.loads(document)  # the standard library's exact reading
    assert exactjson.loads(exactjson.dumps(value)) == value
    if b"123456789012345678901" not in document:
        assert exactjson.dumps(value) == orjson.dumps(value)  # orjson's path, and form


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (b"[" * 1025 + b"]" * 1025, "depth limit"),
        (b"NaN", "unexpected character"),
        (b'"\\ud800"', "surrogate"),
        (b"{", "unexpected end"),
        (b"[1E400]", "infinity"),
    ],
)
def test_exactjson_refuses_what_orjson_refuses_with_a_value_error(document, words):
    with pytest.raises(ValueError, match=words):
        exactjson.loads(document)


def test_exactjson_writes_past_orjsons_depth_and_refuses_past_the_interpreters():
    nested: list[Any] = []
    for _ in range(exactjson.DEPTH + 10):
        nested = [nested, BIG]
    assert exactjson.loads(exactjson.dumps(nested)) == nested
    for _ in range(2_000):
        nested = [nested]
    with pytest.raises(ValueError, match="nested deeper"):
        exactjson.dumps(nested)
