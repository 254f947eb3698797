"""One set of store behaviours, proven on every backend: the JSON file, memory, PostgreSQL.

Each test drives the ``RecordStore`` protocol only, so a behaviour written here holds for any
backend added later. ``reopen`` stands for a restart of the service over the same store
(memory has none: what it promises ends with the process).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from cms_mock.errors import ApiError, InvalidBody, RecordNotFound, StoreUnavailable
from cms_mock.services import SERVICES
from cms_mock.stores import Listing, Query, RecordStore
from cms_mock.stores.file import FileStore
from cms_mock.stores.memory import MemoryStore
from cms_mock.stores.postgres import PostgresStore
from cms_mock.stores.records import LARGEST_ID, timestamp
from tests.support.data import NEW_CUSTOMER, NEW_PROFILE, sample_customers, sample_profiles

Opener = Callable[[str], contextlib.AbstractAsyncContextManager[RecordStore]]


DURABLE = ["file", "postgres"]
"""The backends whose records outlive the process (memory starts from the samples every time)."""


@pytest.fixture(params=["file", "memory", "postgres"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def store_of(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Opener:
    """``store_of(service)``: an opened store of that service, the same one each time it is
    entered (one file, one database), closed when the block ends."""
    url = request.getfixturevalue("postgres").database() if kind == "postgres" else ""
    memory: dict[str, MemoryStore] = {}

    @contextlib.asynccontextmanager
    async def opened(service: str) -> AsyncIterator[RecordStore]:
        entry = SERVICES[service]
        store: RecordStore
        if kind == "file":
            store = FileStore(tmp_path / entry.data_file, entry.rules)
        elif kind == "postgres":
            store = PostgresStore(url, entry.table, entry.rules)
        else:
            store = memory.setdefault(service, MemoryStore(entry.rules))
        if kind != "memory" or not hasattr(store, "_opened"):
            await store.open()
            store._opened = True  # type: ignore[union-attr]
        try:
            yield store
        finally:
            if kind != "memory":
                await store.close()

    return opened


async def records(store: RecordStore) -> list[dict[str, Any]]:
    listed = await store.list()
    return [json.loads(body) async for batch in listed.batches() for body in batch]


def run(scenario: Any) -> Any:
    return asyncio.run(scenario)


def test_a_new_store_holds_the_samples_in_order(store_of):
    async def scenario() -> None:
        async with store_of("cms") as cms, store_of("profile") as profiles:
            assert await records(cms) == sample_customers()
            assert await records(profiles) == sample_profiles()
            assert await cms.count() == len(sample_customers())
            assert await cms.problem() is None

    run(scenario())


def test_create_get_update_delete_keep_the_rules(store_of):
    async def scenario() -> None:
        async with store_of("cms") as store:
            created = json.loads(await store.create(dict(NEW_CUSTOMER)))
            assert list(created) == ["id", *NEW_CUSTOMER, "created_at", "updated_at"]
            assert created["created_at"] == created["updated_at"]
            assert json.loads(await store.get(created["id"])) == created
            updated = json.loads(await store.update(created["id"], {"status": "inactive"}))
            assert updated == {**created, "status": "inactive", "updated_at": updated["updated_at"]}
            assert updated["updated_at"] > created["updated_at"]
            again = json.loads(await store.update(created["id"], {}))
            assert again["updated_at"] > updated["updated_at"]  # even an empty change moves it
            assert [r["id"] for r in await records(store)][-1] == created["id"]  # updates keep creation order
            await store.delete(created["id"])
            with pytest.raises(RecordNotFound, match=f"Customer with ID {created['id']} not found"):
                await store.get(created["id"])

    run(scenario())


@pytest.mark.parametrize("service", ["cms", "profile"])
def test_unknown_ids_are_not_found_with_the_service_message_and_fail_alone(store_of, service):
    fields = NEW_CUSTOMER if service == "cms" else NEW_PROFILE

    async def scenario() -> list[object]:
        async with store_of(service) as store:
            results = await asyncio.gather(
                store.create(dict(fields)),
                store.update("404", {}),
                store.delete("404"),
                store.get("404"),
                store.create(dict(fields)),
                return_exceptions=True,
            )
            assert await store.count() == len(SERVICES[service].rules.samples()) + 2
            return results

    first, update, delete, get, second = run(scenario())
    for missing in (update, delete, get):
        assert isinstance(missing, RecordNotFound)
        assert missing.message == "Customer with ID 404 not found"
    assert json.loads(first)["id"] != json.loads(second)["id"]


def test_concurrent_creates_are_all_kept_with_distinct_ids(store_of):
    async def scenario() -> None:
        async with store_of("cms") as store:
            made = await asyncio.gather(*(store.create({**NEW_CUSTOMER, "name": f"C{i}"}) for i in range(200)))
            ids = [json.loads(body)["id"] for body in made]
            assert len(set(ids)) == 200
            listed = await records(store)
            assert len(listed) == 202
            assert {r["id"] for r in listed} >= set(ids)

    run(scenario())


def test_integer_ids_count_up_and_are_never_given_out_again(store_of):
    async def scenario() -> list[int]:
        async with store_of("profile") as store:
            four = json.loads(await store.create(dict(NEW_PROFILE)))["id"]
            await store.delete(str(four))
            five = json.loads(await store.create(dict(NEW_PROFILE)))["id"]
            await store.delete(str(five))
        async with store_of("profile") as store:  # a restart (memory: the same process)
            six = json.loads(await store.create(dict(NEW_PROFILE)))["id"]
        return [four, five, six]

    assert run(scenario()) == [4, 5, 6]


def test_replace_all_takes_records_as_given_in_their_order(store_of):
    given = [
        {"id": 40, **NEW_PROFILE, "created_at": "2020-01-01T00:00:00.000000", "updated_at": "2020-01-02T00:00:00.000000"},
        {"id": 7, **NEW_PROFILE, "first_name": "Bo", "created_at": "2020-01-03T00:00:00.000000", "updated_at": "2020-01-03T00:00:00.000000"},
    ]

    async def scenario() -> None:
        async with store_of("profile") as store:
            await store.replace_all(given)
            assert await records(store) == given
            assert json.loads(await store.get("7")) == given[1]
            assert json.loads(await store.create(dict(NEW_PROFILE)))["id"] == 41  # after the highest id
            await store.replace_all([])
            assert await store.count() == 0
            assert json.loads(await store.create(dict(NEW_PROFILE)))["id"] == 42  # never back to one given out

    run(scenario())


@pytest.mark.parametrize("kind", DURABLE)
def test_an_emptied_store_stays_empty_after_a_restart(store_of):
    async def scenario() -> None:
        async with store_of("cms") as store:
            for customer in sample_customers():
                await store.delete(customer["id"])
        async with store_of("cms") as store:
            assert await store.count() == 0  # the samples went in once, when the store was new

    run(scenario())


@pytest.mark.parametrize("kind", DURABLE)
def test_every_write_is_read_back_after_a_restart(store_of):
    async def scenario() -> None:
        async with store_of("cms") as store:
            created = json.loads(await store.create(dict(NEW_CUSTOMER)))
            await store.update(created["id"], {"name": "Renamed"})
            before = await records(store)
        async with store_of("cms") as store:
            assert await records(store) == before

    run(scenario())


def test_a_long_list_is_every_record_once_in_creation_order(store_of):
    """Over a thousand records PostgreSQL reads the list in batches while it is sent."""

    async def scenario() -> None:
        async with store_of("profile") as store:
            stamp = "2020-01-01T00:00:00.000000"
            made = [{"id": n, **NEW_PROFILE, "created_at": stamp, "updated_at": stamp} for n in range(2500, 0, -1)]
            await store.replace_all(made)
            listed = await store.list()
            assert [r["id"] for r in await records(store)] == list(range(2500, 0, -1))
            assert isinstance(listed, Listing) == (not isinstance(store, PostgresStore))
            keyed = orjson.loads(await store.keyed())  # one statement on PostgreSQL, not batches
            assert list(keyed) == [str(n) for n in range(2500, 0, -1)]
            assert list(keyed.values()) == await records(store)

    run(scenario())


def test_a_closed_store_refuses_writes_and_changes_nothing(store_of):
    async def scenario() -> None:
        async with store_of("cms") as store:
            await store.close()  # closing twice (here, and as the block ends) is harmless
            with pytest.raises(StoreUnavailable, match="closed; nothing was changed"):
                await store.update(sample_customers()[0]["id"], {"name": "x"})
        with pytest.raises(StoreUnavailable, match="closed; nothing was changed"):
            await store.create(dict(NEW_CUSTOMER))

    run(scenario())


def test_concurrent_updates_of_one_record_are_each_made_once_in_some_order(store_of):
    """No update is lost: each answer carries a distinct, later ``updated_at``, and the record
    ends as the latest of them (PostgreSQL writes by compare-and-set and reads again on a race)."""

    async def scenario() -> None:
        async with store_of("cms") as store:
            key = sample_customers()[0]["id"]
            answers = [json.loads(b) for b in await asyncio.gather(*(store.update(key, {"name": f"N{i}"}) for i in range(60)))]
            stamps = [a["updated_at"] for a in answers]
            assert len(set(stamps)) == 60
            assert json.loads(await store.get(key)) == max(answers, key=lambda a: a["updated_at"])

    run(scenario())


def test_find_filters_searches_sorts_and_pages_in_one_moment(store_of):
    """Every store answers a ``Query`` alike; PostgreSQL opened without ``fields`` (as here)
    reads the fields from each row's JSON instead of its columns, and must agree all the same."""
    fields = SERVICES["profile"].collection.fields

    async def scenario() -> None:
        async with store_of("profile") as store:
            for n in range(12):
                await store.create({**NEW_PROFILE, "last_name": ["Lee", "lee", "Ōta"][n % 3], "email": f"p{n % 4}@example.com"})
            everyone = await records(store)

            async def found(**query: Any) -> tuple[list[int], int]:
                page = await store.find(Query(fields=fields, **query))
                return [orjson.loads(body)["id"] async for batch in page.records.batches() for body in batch], page.total

            ids = [p["id"] for p in everyone]
            assert await found() == (ids, len(ids))
            assert await found(sort=(("id", True),)) == (ids[::-1], len(ids))  # numbers, not text: 15 before 9
            lees = [p["id"] for p in everyone if p["last_name"] == "Lee"]
            assert await found(equal=(("last_name", "Lee"),)) == (lees, len(lees))
            ota = [p["id"] for p in everyone if p["last_name"] == "Ōta"]
            assert await found(text="ŌTA", limit=2, offset=1) == (ota[1:3], len(ota))
            by_name = sorted(everyone, key=lambda p: p["last_name"])  # code points: "Lee" < "lee" < "Ōta"; ties in creation order
            assert await found(sort=(("last_name", False),), offset=10) == ([p["id"] for p in by_name][10:], len(ids))
            assert await found(text="%") == ([], 0)

    run(scenario())


def test_updated_at_moves_to_the_later_of_now_and_a_microsecond_after_the_last(store_of):
    """Another instance's clock may be ahead, a fixture may hold a future time: an update never
    moves ``updated_at`` back. At the last instant there is, no update can move it forward, so
    none is made; and a left-out ``created_at`` is never after a given ``updated_at``."""
    future, past = "3000-01-01T00:00:00.000000", "2020-01-01T00:00:00.000000"
    given = [
        {"id": "future", **NEW_CUSTOMER, "created_at": past, "updated_at": future},
        {"id": "past", **NEW_CUSTOMER, "created_at": past, "updated_at": past},
        {"id": "edge", **NEW_CUSTOMER, "created_at": past, "updated_at": "9999-12-31T23:59:59.999998"},
        {"id": "later", **NEW_CUSTOMER, "updated_at": past},
    ]

    async def scenario() -> None:
        async with store_of("cms") as store:
            await store.replace_all(given)
            later = json.loads(await store.get("later"))
            assert later["created_at"] <= later["updated_at"] == past  # made as on create, but not after what was given
            assert json.loads(await store.update("future", {}))["updated_at"] == "3000-01-01T00:00:00.000001"
            before = timestamp()
            assert json.loads(await store.update("past", {"name": "Now"}))["updated_at"] >= before  # now: later than past + 1 µs
            last = json.loads(await store.update("edge", {}))
            assert last["updated_at"] == "9999-12-31T23:59:59.999999"
            with pytest.raises(InvalidBody, match="Customer with ID edge cannot change: its updated_at is the last time there is"):
                await store.update("edge", {"name": "Never"})
            assert json.loads(await store.get("edge")) == last

    run(scenario())


def test_no_id_past_the_largest_an_import_takes_is_ever_made(store_of):
    """Creates and imports keep one limit (``LARGEST_ID``, 2^53 - 1): a create past it stores
    nothing, and a replacement whose left-out ids would pass it changes nothing, ids to come included."""
    stamp = "2020-01-01T00:00:00.000000"
    near = {"id": LARGEST_ID - 1, **NEW_PROFILE, "created_at": stamp, "updated_at": stamp}

    async def scenario() -> None:
        async with store_of("profile") as store:
            with pytest.raises(InvalidBody) as refused:
                await store.replace_all([near, dict(NEW_PROFILE), dict(NEW_PROFILE)])
            assert [(e.loc, e.type) for e in refused.value.errors] == [(("body", 2, "id"), "value_error.id")]
            assert [r["id"] for r in await records(store)] == [1, 2, 3]
            assert json.loads(await store.create(dict(NEW_PROFILE)))["id"] == 4  # the ids to come did not move
            await store.replace_all([near, dict(NEW_PROFILE)])
            assert [r["id"] for r in await records(store)] == [LARGEST_ID - 1, LARGEST_ID]
            for _ in range(2):
                with pytest.raises(ApiError, match=f"No id is left to give: every id from 1 to {LARGEST_ID} .* has been given out; nothing was stored") as past:
                    await store.create(dict(NEW_PROFILE))
                assert past.value.status == 422
            assert [r["id"] for r in await records(store)] == [LARGEST_ID - 1, LARGEST_ID]

    run(scenario())
