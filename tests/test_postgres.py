"""Several instances over one PostgreSQL database, through real HTTP against real servers:
what one acknowledges every other reads at once, and no fault loses an acknowledged write."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cms_mock.stores.postgres.schema import SCHEMA_VERSION
from tests.support.data import NEW_CUSTOMER, NEW_PROFILE, sample_customers
from tests.support.ports import free_port
from tests.support.postgres import Cluster
from tests.support.servers import LiveServer
from tests.support.writers import Writers

pytestmark = pytest.mark.live


@pytest.fixture
def database(postgres: Cluster) -> str:
    return postgres.database()


def instances(tmp_path: Path, url: str, count: int = 2, *args: str, env: dict[str, str] | None = None) -> list[LiveServer]:
    return [LiveServer(tmp_path / f"data-{n}", *args, env={"DATABASE_URL": url, **(env or {})}) for n in range(count)]


@pytest.fixture
def pair(tmp_path: Path, database: str) -> Iterator[list[LiveServer]]:
    """Two instances over one database; the first runs two workers."""
    env = {"DATABASE_URL": database}
    # ``--workers`` given as the server is made, which settles whether a socket is handed to it (``--fd`` serves one process)
    with LiveServer(tmp_path / "data-0", "--workers", "2", env=env).start() as first, LiveServer(tmp_path / "data-1", env=env).start() as second:
        yield [first, second]


def everything(url: str, path: str = "/api/customers") -> dict[str, dict]:
    response = httpx.get(url + path, timeout=60)
    assert response.status_code == 200
    return {str(record["id"]): record for record in response.json()}


def test_two_instances_see_each_others_writes_at_once(pair):
    first, second = pair
    created = httpx.post(f"{first.url}/api/customers", json=NEW_CUSTOMER).json()
    assert httpx.get(f"{second.url}/api/customers/{created['id']}").json() == created
    updated = httpx.put(f"{second.url}/api/customers/{created['id']}", json={"status": "inactive"}).json()
    assert httpx.get(f"{first.url}/api/customers/{created['id']}").json() == updated
    assert httpx.delete(f"{first.url}/api/customers/{created['id']}").status_code == 204
    assert httpx.get(f"{second.url}/api/customers/{created['id']}").status_code == 404
    assert list(everything(first.url).values()) == sample_customers()  # the samples went in once, not once per instance


def test_concurrent_changes_from_both_instances_are_all_there_exactly(pair):
    first, second = pair
    with Writers(first.url) as a, Writers(second.url) as b:
        time.sleep(3)
    made = {r["id"]: r for r in a.acknowledged + b.acknowledged}
    assert len(made) == len(a.acknowledged) + len(b.acknowledged) > 50
    assert set(a.statuses) == set(b.statuses) == {201}
    # updates and deletes crossing over: each instance changes what the other made
    doomed = list(made)[::3]
    touched = list(made)[1::3]
    with httpx.Client(timeout=30) as client:
        for n, key in enumerate(doomed):
            assert client.delete(f"{(first, second)[n % 2].url}/api/customers/{key}").status_code == 204
        for n, key in enumerate(touched):
            response = client.put(f"{(second, first)[n % 2].url}/api/customers/{key}", json={"name": f"renamed {n}"})
            assert response.status_code == 200
            made[key] = response.json()
    for key in doomed:
        del made[key]
    expected = {c["id"]: c for c in sample_customers()} | made
    assert everything(first.url) == everything(second.url) == expected
    assert list(everything(first.url))[:2] == [c["id"] for c in sample_customers()]  # creation order: the samples first


def test_profile_ids_from_two_instances_are_distinct_and_never_reused(tmp_path, database):
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(server.start()) for server in instances(tmp_path, database, 2, "serve", "profile")]
        with Writers(servers[0].url, service="profile") as a, Writers(servers[1].url, service="profile") as b:
            time.sleep(2)
        ids = [r["id"] for r in a.acknowledged + b.acknowledged]
        assert len(ids) == len(set(ids)) > 20
        highest = max(ids)
        assert httpx.delete(f"{servers[0].url}/customers/{highest}").status_code == 204
        servers[0].stop()
        servers[0].start()  # a restart: the sequence goes on, never back to the deleted id
        again = httpx.post(f"{servers[0].url}/customers", json=NEW_PROFILE).json()
        assert again["id"] > highest


def test_an_instance_killed_under_writes_loses_nothing_acknowledged(pair):
    first, second = pair
    with Writers(first.url, threads=6) as writers:
        time.sleep(1.5)
        first.send_signal(signal.SIGKILL)
        time.sleep(0.5)
    assert len(writers.acknowledged) > 20
    stored = everything(second.url)
    for record in writers.acknowledged:
        assert stored[record["id"]] == record


def test_the_database_restarted_under_load_gives_503s_then_recovers_and_loses_nothing(pair, postgres):
    first, second = pair
    with Writers(first.url) as writers:
        time.sleep(1)
        postgres.stop("fast")
        time.sleep(1)
        down = httpx.get(f"{second.url}/health", timeout=30)
        listed = httpx.get(f"{second.url}/api/customers", timeout=30)
        postgres.start()
        deadline = time.monotonic() + 30
        while httpx.get(f"{first.url}/health", timeout=30).status_code != 200:
            assert time.monotonic() < deadline, "no recovery after the database came back"
            time.sleep(0.2)
        time.sleep(1)
    assert down.status_code == 503
    assert down.json()["status"] == "unhealthy"
    assert "database" in down.json()["reason"]
    assert listed.status_code == 503
    assert listed.json()["detail"].startswith("Storage unavailable: the database")
    assert set(writers.statuses) <= {201, 503}, writers.statuses  # never a 500
    assert writers.statuses.get(503), "the outage was not seen"
    stored = everything(second.url)
    for record in writers.acknowledged:
        assert stored[record["id"]] == record
    assert httpx.post(f"{second.url}/api/customers", json=NEW_CUSTOMER).status_code == 201


def wait_answering(server: LiveServer) -> httpx.Response:
    """The first answer of /health, whatever it is, from a server started without waiting."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(f"{server.url}/health", timeout=10)
        except httpx.TransportError:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.1)


def test_a_database_that_is_not_there_is_a_503_within_the_timeout_never_a_hang(tmp_path):
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    with LiveServer(tmp_path / "data", env={"DATABASE_URL": nowhere, "DATABASE_TIMEOUT": "2"}) as server:
        server.start(wait=False)
        health = wait_answering(server)
        assert health.status_code == 503
        assert "total_customers" not in health.json()  # unknown, so not said
        started = time.monotonic()
        refused = httpx.post(f"{server.url}/api/customers", json=NEW_CUSTOMER, timeout=10)
        assert time.monotonic() - started < 5
        assert refused.status_code == 503
        assert refused.json() == {"detail": refused.json()["detail"]}
        assert "nothing was changed" in refused.json()["detail"]
        assert httpx.get(f"{server.url}/api/customers/x", timeout=10).status_code == 503


def test_the_list_of_many_records_streams_every_record_once(pair, postgres, database):
    first, _ = pair
    stamp = "2020-01-01T00:00:00.000000"
    rows = ", ".join(f"('{n:08d}', '{json.dumps({'id': f'{n:08d}', **NEW_CUSTOMER, 'created_at': stamp, 'updated_at': stamp})}')" for n in range(5000))
    postgres.execute(f"INSERT INTO cms_records (id, body) VALUES {rows}", database.rsplit("/", 1)[1])
    with httpx.stream("GET", f"{first.url}/api/customers", timeout=60) as response:
        assert response.headers.get("transfer-encoding") == "chunked"
        body = json.loads(response.read())
    assert [r["id"] for r in body] == [c["id"] for c in sample_customers()] + [f"{n:08d}" for n in range(5000)]


def test_a_database_at_a_newer_schema_version_is_refused_and_left_alone(tmp_path, postgres, database):
    name = database.rsplit("/", 1)[1]
    postgres.execute("CREATE TABLE cms_mock_schema (version integer NOT NULL); INSERT INTO cms_mock_schema VALUES (99)", name)
    server = LiveServer(tmp_path / "data", env={"DATABASE_URL": database})
    server.start(wait=False)
    assert server.process is not None
    assert server.process.wait(30) == 3
    assert f"schema is at version 99, newer than this cms-mock knows ({SCHEMA_VERSION})" in server.output()
    assert [row[0] for row in postgres.fetch("SELECT version FROM cms_mock_schema", name)] == [99]
    assert not postgres.fetch("SELECT 1 FROM pg_tables WHERE tablename = 'cms_records'", name)


def test_a_crowd_of_requests_to_a_silent_database_is_answered_within_the_timeout(tmp_path):
    """A database that accepts connections and never answers (a black hole): every request of
    a crowd gets its 503 within about one timeout, not one timeout per request before it."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(100)
    url = f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/none"
    with silent, LiveServer(tmp_path / "data", env={"DATABASE_URL": url, "DATABASE_TIMEOUT": "1"}) as server:  # the server stopped before the database
        server.start(wait=False)
        wait_answering(server)
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(lambda n: httpx.get(f"{server.url}/api/customers/{n}", timeout=30), range(20)))
        elapsed = time.monotonic() - started
        assert {answer.status_code for answer in answers} == {503}
        assert all("within 1 s" in answer.json()["detail"] or "unreachable" in answer.json()["detail"] for answer in answers)
        assert elapsed < 5, elapsed


def test_a_database_url_that_cannot_work_refuses_the_start(tmp_path, postgres):
    server = LiveServer(tmp_path / "data", env={"DATABASE_URL": postgres.url("no_such_database")})
    server.start(wait=False)
    assert server.process is not None
    assert server.process.wait(30) == 3
    assert "DATABASE_URL cannot be used: InvalidCatalogNameError" in server.output()
