"""Collections: filters, search, sort and pages on the list, with ``X-Total-Count``,
``Link`` and a list ``ETag``; on the JSON file, in memory and on PostgreSQL, each judged against
a plain-Python reading of the spec's words written here, apart from the server's code."""

from __future__ import annotations

import asyncio
import random
import re
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from cms_mock.services import SERVICES
from cms_mock.stores import Fields, Query, RecordStore, selection
from cms_mock.stores.file import FileStore
from cms_mock.stores.memory import MemoryStore
from cms_mock.stores.postgres import PostgresStore
from tests.support.app import build_client
from tests.support.data import NEW_PROFILE

SEARCHED = ("name", "email", "phone", "address", "company")
FIRST = ["Ann", "bob", "Émile", "zoë", "Zack", "ÉMILIE", "snake_case", "Per%cent", "Back\\slash", "Ola"]
COMPANIES = ["Tech Corp", "tech corp", "100% Organic", "Global Logistics", "Ünïcode GmbH", "Acme", "ACME Widgets"]


def customers(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Records with ties (timestamps, companies, names), letter cases and characters that a
    database's LIKE or collation would read differently from Python, if it were let to."""
    rng = random.Random(seed)
    made = []
    for n in range(count):
        stamp = f"2026-0{rng.randint(1, 3)}-1{rng.randint(0, 2)}T10:00:00.000000"
        made.append(
            {
                "id": f"00000000-0000-4000-8000-{n:012d}",
                "name": f"{rng.choice(FIRST)} {rng.choice(['Smith', 'smith', 'Ng', 'Østergaard'])}",
                "email": f"user{n % 400}@{rng.choice(['example.com', 'mail.example.org'])}",
                "phone": f"+1-555-{rng.randint(0, 99):04d}",
                "address": f"{rng.randint(1, 50)} {rng.choice(['Oak St', 'Elm Road', 'oak lane'])}",
                "company": rng.choice(COMPANIES),
                "status": rng.choice(["active", "active", "inactive"]),
                "created_at": stamp,
                "updated_at": stamp,
            }
        )
    return made


def expected(records: list[dict[str, Any]], params: dict[str, Any]) -> list[dict[str, Any]]:
    """What the spec's descriptions say a list with ``params`` holds, before paging."""
    chosen = [r for r in records if all(r[field] == params[field] for field in ("status", "company", "email") if field in params)]
    if "q" in params:
        chosen = [r for r in chosen if any(params["q"].lower() in r[field].lower() for field in SEARCHED)]
    return sort_by(chosen, params.get("sort", ""))


def sort_by(records: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    """Stable sorts, the last key first: ties keep the order before (creation order); a record
    without the field after every value, so last ascending and first descending."""
    for key in reversed([key for key in sort.split(",") if key]):
        field = key.lstrip("-")
        records = sorted(records, key=lambda record: _placed(record.get(field)), reverse=key.startswith("-"))
    return records


def _placed(value: Any) -> tuple[bool, Any]:
    return (value is None, 0 if value is None else value)


@pytest.fixture(scope="module", params=["file", "memory", "postgres"])
def any_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """One app per store for the module's tests; ``any_client`` resets it before each."""
    settings: dict[str, Any] = {}
    if request.param == "postgres":
        settings["database_url"] = request.getfixturevalue("postgres").database()
    elif request.param == "memory":
        settings["in_memory"] = True
    with build_client(tmp_path_factory.mktemp(request.param), **settings) as client:
        client.backend = request.param  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def any_client(any_app: httpx.Client) -> httpx.Client:
    assert any_app.post("/__admin/reset").status_code == 204
    return any_app


@pytest.fixture
def loaded(any_client: httpx.Client) -> tuple[httpx.Client, list[dict[str, Any]]]:
    records = customers(1000)
    assert any_client.put("/__admin/records", json=records).status_code == 204
    return any_client, records


QUERIES = [
    {"status": "inactive"},
    {"company": "Tech Corp"},
    {"company": "100% Organic", "status": "active"},
    {"email": "user7@example.com"},
    {"q": "OAK"},
    {"q": "émil"},
    {"q": "ÉMIL"},
    {"q": "%"},
    {"q": "_"},
    {"q": "\\"},
    {"q": "ünïcode"},
    {"q": ""},
    {"q": "nothing like it"},
    {"sort": "name"},
    {"sort": "-created_at"},
    {"sort": "company,-name,phone"},
    {"sort": "-status,created_at"},
    {"sort": "id"},
    {"status": "active", "q": "smith", "sort": "-created_at,name"},
    {"company": "Acme", "sort": "-email"},
    {"sort": "-name,email,-phone,address,-company,status,-created_at,updated_at,-id"},
    {"status": "inactive", "sort": "-company,address,-phone"},
]


@pytest.mark.parametrize("params", QUERIES, ids=lambda p: urllib.parse.urlencode(p))
def test_filters_search_and_sort_select_what_the_spec_says(loaded, params):
    client, records = loaded
    answer = client.get("/api/customers", params=params)
    assert answer.status_code == 200
    want = expected(records, params)
    assert [r["id"] for r in answer.json()] == [r["id"] for r in want]
    assert answer.headers["x-total-count"] == str(len(want))
    assert "link" not in answer.headers  # no limit, no pages


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 7},
        {"status": "active", "sort": "name", "limit": 50, "offset": 20},
        {"q": "smith", "offset": 990},
        {"sort": "-name,email,-phone,address,-company,status,-created_at,updated_at,-id", "limit": 1},
        {"sort": "-company,name,-created_at", "limit": 30, "offset": 500},
    ],
)
def test_a_page_is_the_slice_of_the_whole_answer(loaded, params):
    client, records = loaded
    answer = client.get("/api/customers", params=params)
    want = expected(records, params)
    offset = params.get("offset", 0)
    end = offset + params["limit"] if "limit" in params else None
    assert [r["id"] for r in answer.json()] == [r["id"] for r in want[offset:end]]
    assert answer.headers["x-total-count"] == str(len(want))


def test_paging_with_the_link_headers_visits_every_record_once(loaded):
    client, records = loaded
    want = [r["id"] for r in expected(records, {"sort": "company,-created_at"})]
    url: str | None = "/api/customers/?sort=company,-created_at&limit=64&unknown=" + "x" * 30_000  # ignored, and not repeated
    seen, pages = [], 0
    while url is not None:
        page = client.get(url)
        assert page.status_code == 200
        assert page.headers["x-total-count"] == "1000"
        links = page.links
        assert {"first", "last"} <= set(links)
        assert all("sort=company%2C-created_at" in link["url"] and "unknown" not in link["url"] for link in links.values())
        assert ("prev" in links) == (pages > 0)
        seen += [r["id"] for r in page.json()]
        url = links.get("next", {}).get("url")
        pages += 1
    assert pages == 16
    assert seen == want
    assert client.get("/api/customers?limit=64&offset=960").links["last"]["url"].endswith("limit=64&offset=960")


def test_the_link_header_at_the_edges(any_client):
    first = any_client.get("/api/customers?limit=1")  # the two samples
    assert first.headers["link"] == (
        '</api/customers?limit=1&offset=0>; rel="first", </api/customers?limit=1&offset=1>; rel="next", </api/customers?limit=1&offset=1>; rel="last"'
    )
    past = any_client.get("/api/customers?limit=1&offset=10&q=")
    assert (past.json(), past.headers["x-total-count"]) == ([], "2")
    assert past.links["prev"]["url"] == past.links["last"]["url"] == "/api/customers?q=&limit=1&offset=1"
    assert "next" not in past.links
    none = any_client.get("/api/customers?limit=5&status=inactive&company=Nobody")
    assert (none.json(), none.headers["x-total-count"]) == ([], "0")
    assert none.links["first"]["url"] == none.links["last"]["url"]


def test_without_new_parameters_the_answer_is_the_seeds(any_client):
    plain = any_client.get("/api/customers/")
    ignored = any_client.get("/api/customers/?page=2&per_page=1&filter=x")
    assert plain.content == ignored.content
    assert [r["name"] for r in plain.json()] == ["John Doe", "Jane Smith"]
    for answer in (plain, ignored):
        assert "x-total-count" not in answer.headers
        assert "link" not in answer.headers


BAD = [
    ("limit=0", "limit", "ensure this value is greater than or equal to 1"),
    ("limit=1001", "limit", "ensure this value is less than or equal to 1000"),
    ("limit=abc", "limit", "value is not a valid integer"),
    ("limit=1.5", "limit", "value is not a valid integer"),
    ("offset=-1", "offset", "ensure this value is greater than or equal to 0"),
    ("offset=99999999999", "offset", "ensure this value is less than or equal to 2147483647"),
    ("sort=nosuchfield", "sort", "must be field names of Customer separated by commas, each with an optional - in front (descending)"),
    ("sort=name,", "sort", "must be field names of Customer separated by commas, each with an optional - in front (descending)"),
    ("sort=--name", "sort", "must be field names of Customer separated by commas, each with an optional - in front (descending)"),
    ("status=gone", "status", "value is not a valid enumeration member; permitted: 'active', 'inactive'"),
    ("email=not-an-address", "email", "value is not a valid email address"),
    ("company=", "company", "ensure this value has at least 1 characters"),
    ("q=a%00b", "q", "must not contain control characters (line breaks, tabs, NUL)"),
]


@pytest.mark.parametrize(("query", "name", "message"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_value_is_a_422_naming_the_parameter_and_changes_nothing(any_client, query, name, message):
    before = any_client.get("/__admin/records").json()
    answer = any_client.get(f"/api/customers?{query}")
    assert answer.status_code == 422
    problems = answer.json()["detail"]
    assert [p["loc"] for p in problems] == [["query", name]]
    assert problems[0]["msg"] == message
    assert any_client.get("/__admin/records").json() == before


def test_every_bad_parameter_is_named_in_one_422(any_client):
    """As FastAPI answers them, and as a body's problems are: all at once, in the spec's order."""
    answer = any_client.get("/api/customers?offset=-1&limit=0&status=gone")
    assert answer.status_code == 422
    assert [(p["loc"], p["msg"]) for p in answer.json()["detail"]] == [
        (["query", "status"], "value is not a valid enumeration member; permitted: 'active', 'inactive'"),
        (["query", "limit"], "ensure this value is greater than or equal to 1"),
        (["query", "offset"], "ensure this value is greater than or equal to 0"),
    ]


def test_the_list_etag_cycle_for_the_list_and_for_a_page(any_client):
    for url in ("/api/customers", "/api/customers?status=active&sort=-name&limit=1"):
        tag = any_client.get(url).headers["etag"]
        assert re.fullmatch(r'"[0-9a-f]{32}(-[0-9]+)?"', tag)
        assert any_client.get(url).headers["etag"] == tag  # the same version, the same tag
        unchanged = any_client.get(url, headers={"If-None-Match": tag})
        assert (unchanged.status_code, unchanged.content, unchanged.headers["etag"]) == (304, b"", tag)
        assert any_client.get(url, headers={"If-None-Match": "*"}).status_code == 304
        assert any_client.get(url + ("&" if "?" in url else "?") + "offset=1").headers["etag"] != tag
    whole = any_client.get("/api/customers").headers["etag"]
    page = any_client.get("/api/customers?limit=1").headers["etag"]
    renamed = any_client.put(f"/api/customers/{any_client.get('/api/customers').json()[1]['id']}", json={"phone": "+1-555-7777"})
    assert renamed.status_code == 200
    changed = any_client.get("/api/customers", headers={"If-None-Match": whole})
    assert changed.status_code == 200
    assert changed.headers["etag"] != whole
    assert any_client.get("/api/customers?limit=1", headers={"If-None-Match": page}).status_code == 304  # its one record did not change
    assert any_client.post("/api/customers", json={"name": "Zed", "email": "zed@example.com", "phone": "1", "address": "a", "company": "c"}).status_code == 201
    grown = any_client.get("/api/customers?limit=1", headers={"If-None-Match": page})
    assert grown.status_code == 200
    assert grown.headers["etag"] != page  # the same record, but X-Total-Count moved


def test_a_long_unpaged_answer_from_postgresql_is_streamed_without_a_tag(tmp_path, postgres):
    records = customers(2500, seed=11)
    with build_client(tmp_path, database_url=postgres.database()) as client:
        assert client.put("/__admin/records", json=records).status_code == 204
        answer = client.get("/api/customers?sort=-name,phone")
        assert [r["id"] for r in answer.json()] == [r["id"] for r in expected(records, {"sort": "-name,phone"})]
        assert answer.headers["x-total-count"] == "2500"
        assert "etag" not in answer.headers
        assert client.get("/api/customers?sort=-name,phone", headers={"If-None-Match": "*"}).status_code == 304  # a version exists
        assert "etag" in client.get("/api/customers?sort=-name,phone&limit=1000").headers


def test_letter_case_the_way_people_read_it(any_client):
    greek = {"name": "ΚΑΣΑ Οδυσσέας", "email": "kasa@example.com", "phone": "+30-210-0000", "address": "Οδός 1", "company": "ΣΟΦΙΑ"}
    assert any_client.post("/api/customers", json=greek).status_code == 201
    for text in ("ΑΣ", "ασ", "κασα", "οδυσσέας", "ΟΔΥΣΣΈΑΣ", "σοφια"):  # noqa: RUF001, RUF003 (a final sigma, lower case ς, is found as σ and Σ)
        found = any_client.get("/api/customers", params={"q": text})
        assert [c["email"] for c in found.json()] == ["kasa@example.com"], text


def test_a_field_named_again_in_sort_changes_nothing(loaded):
    client, _ = loaded
    once = client.get("/api/customers?sort=company,-name&limit=100").content
    assert client.get("/api/customers?sort=company,-name,-company,name,company&limit=100").content == once


def test_an_error_asked_for_is_about_the_query(any_client):
    answer = any_client.get("/api/customers?limit=5", headers={"Prefer": "code=422"})
    assert answer.status_code == 422
    assert [p["loc"] for p in answer.json()["detail"]] == [["query"]]


MANY = "-name,email,-phone,address,-company,status,-created_at,updated_at,-id"
"""Nine sort fields, the direction changing at each."""


def _sort(text: str) -> tuple[tuple[str, bool], ...]:
    return tuple((key.lstrip("-"), key.startswith("-")) for key in text.split(","))


def _held(kind: str, tmp_path: Path) -> RecordStore:
    """A store that answers queries from records in memory (``selection.Selector``)."""
    service = SERVICES["cms"]
    return FileStore(tmp_path / service.data_file, service.rules) if kind == "file" else MemoryStore(service.rules)


def _found(kind: str, tmp_path: Path, records: list[dict[str, Any]], queries: list[Query]) -> list[list[str]]:
    """The ids each query finds in a store holding ``records``."""

    async def scenario() -> list[list[str]]:
        store = _held(kind, tmp_path)
        await store.open()
        await store.replace_all(records)
        try:
            return [[orjson.loads(body)["id"] async for batch in (await store.find(query)).records.batches() for body in batch] for query in queries]
        finally:
            await store.close()

    return asyncio.run(scenario())


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_a_sort_on_many_fields_is_one_sort_off_the_event_loop(kind, tmp_path, monkeypatch):
    """Every row is sorted once, by one key (not once per change of direction), in a worker
    thread: the event loop's thread goes on answering meanwhile. More rows than one step of the
    work holds: the steps are sorted apart and merged."""
    records = customers(2 * selection._STEP + 100)
    sorts: list[tuple[int, int]] = []

    def counted(items: Any, **options: Any) -> list[Any]:
        items = list(items)
        sorts.append((threading.get_ident(), len(items)))
        return sorted(items, **options)

    monkeypatch.setattr(selection, "sorted", counted, raising=False)
    [ids] = _found(kind, tmp_path, records, [Query(sort=_sort(MANY), fields=SERVICES["cms"].collection.fields)])
    assert ids == [r["id"] for r in sort_by(records, MANY)]
    assert sum(size for _, size in sorts) == len(records)
    assert threading.get_ident() not in {thread for thread, _ in sorts}  # asyncio.run's loop runs in this thread


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_text_by_code_point_and_missing_values_in_either_direction(kind, tmp_path):
    """Texts that begin one another, NUL, characters past U+FFFF, and records without the field
    (only a data file edited by hand has them): by code point, missing last ascending and first
    descending, in sorts whose fields change direction, whole and a page of them."""
    texts = ["", "a", "ab", "abc", "ab\x00", "ab\x00c", "Z", "é", "\U0001f600", "\uffff", "ab\U0010ffff", None]
    rng = random.Random(11)
    records = []
    for record in customers(600):
        for field in ("name", "phone"):
            record[field] = rng.choice(texts)
        records.append({name: value for name, value in record.items() if value is not None})
    fields = SERVICES["cms"].collection.fields
    sorts = ["-name", "name", "-name,phone", "name,-phone", "-phone,-name", "phone,name,-created_at"]
    queries = [Query(sort=_sort(sort), fields=fields, limit=limit, offset=offset) for sort in sorts for limit, offset in ((None, 0), (7, 40))]
    found = _found(kind, tmp_path, records, queries)
    for query, ids in zip(queries, found, strict=True):
        text = ",".join(("-" if descending else "") + field for field, descending in query.sort)
        end = None if query.limit is None else query.offset + query.limit
        assert ids == [r["id"] for r in sort_by(records, text)][query.offset : end], text


PROFILE_SORTS = ["id", "-id", "last_name,first_name", "-date_of_birth"]


@pytest.fixture
def profiles(tmp_path: Path, backend: dict[str, object]) -> Iterator[httpx.Client]:
    with build_client(tmp_path, service="profile", **backend) as client:
        for n in range(12):  # ids past 9: a text sort would put 10 before 9
            made = {**NEW_PROFILE, "last_name": ["Lee", "lee", "Smith"][n % 3], "email": f"p{n % 4}@example.com", "date_of_birth": f"19{60 + n}-01-31"}
            assert client.post("/customers", json=made).status_code == 201
        yield client


@pytest.mark.parametrize("sort", PROFILE_SORTS)
def test_profiles_sort_ids_as_numbers(profiles, sort):
    everyone = sort_by(profiles.get("/customers").json(), sort)
    assert [p["id"] for p in profiles.get(f"/customers?sort={sort}").json()] == [p["id"] for p in everyone]


def test_profiles_filter_search_page_and_refuse_in_their_dialect(profiles):
    lees = profiles.get("/customers?last_name=Lee&email=p0@example.com")
    assert {(p["last_name"], p["email"]) for p in lees.json()} == {("Lee", "p0@example.com")}
    assert lees.headers["x-total-count"] == str(len(lees.json()))
    found = profiles.get("/customers?q=SMI&limit=2&offset=2")
    assert found.headers["x-total-count"] == str(sum(1 for p in profiles.get("/customers").json() if "smi" in p["last_name"].lower()))
    assert found.links["prev"]["url"] == "/customers?q=SMI&limit=2&offset=0"
    refused = profiles.get("/customers?limit=0")
    assert (refused.status_code, refused.json()) == (422, {"error": "Validation failed: limit: ensure this value is greater than or equal to 1"})
    both = profiles.get("/customers?limit=0&offset=-1")
    assert (both.status_code, both.json()) == (
        422,
        {"error": "Validation failed: limit: ensure this value is greater than or equal to 1; offset: ensure this value is greater than or equal to 0"},
    )
    assert profiles.get("/customers?sort=name").json() == {
        "error": "Validation failed: sort: must be field names of Profile separated by commas, each with an optional - in front (descending)"
    }
    tag = profiles.get("/customers?last_name=Lee").headers["etag"]
    assert profiles.get("/customers?last_name=Lee", headers={"If-None-Match": tag}).status_code == 304


def test_a_table_from_before_the_query_columns_gets_them_once(postgres):
    """A database written by a version without the query columns: the first start adds them and
    the indexes (rewriting the table once), later starts change nothing, and a change of the
    searched fields makes the search column anew."""
    url, service = postgres.database(), SERVICES["cms"]
    fields = service.collection.fields

    async def columns() -> list[str]:
        connection = await asyncpg.connect(url)
        try:
            names = await connection.fetch(f"SELECT attname FROM pg_attribute WHERE attrelid = '{service.table}'::regclass AND attnum > 0 AND NOT attisdropped")
            return sorted(row[0] for row in names)
        finally:
            await connection.close()

    async def opened(with_fields: Fields | None) -> PostgresStore:
        store = PostgresStore(url, service.table, service.rules, fields=with_fields)
        await store.open()
        return store

    async def scenario() -> None:
        old = await opened(None)
        await old.replace_all(customers(300))
        await old.close()
        assert await columns() == ["body", "id", "seq"]
        new = await opened(fields)
        page = await new.find(Query(equal=(("status", "inactive"),), text="OAK", sort=(("created_at", True),), limit=5, fields=fields))
        want = expected(customers(300), {"status": "inactive", "q": "OAK", "sort": "-created_at"})
        assert [orjson.loads(body)["id"] for body in page.records] == [r["id"] for r in want[:5]]
        assert page.total == len(want)
        await new.close()
        first = await columns()
        assert {f"f_{name}" for name in fields.names} < set(first)
        assert len([name for name in first if name.startswith("search_")]) == 1
        await (await opened(fields)).close()
        assert await columns() == first
        fewer = Fields(names=fields.names, numbers=fields.numbers, indexed=fields.indexed, searched=("name",))
        narrowed = await opened(fewer)
        assert [c for c in await columns() if c.startswith("search_")] != [c for c in first if c.startswith("search_")]
        assert (await narrowed.find(Query(text="OAK", fields=fewer))).total == 0  # addresses are no longer searched
        await narrowed.close()

    asyncio.run(scenario())
