"""The journal, coverage, fault rules and metrics are the whole service's: two workers of one
``cms-mock --workers 2`` (the JSON file, PostgreSQL) and two instances on one database record
into, and read, the same ones. Real servers over real HTTP; ``Connection: close`` on every
request, so the kernel spreads them over both workers."""

from __future__ import annotations

import concurrent.futures
import re
import threading
import time

import httpx
import pytest

from tests.support.servers import LiveServer

pytestmark = pytest.mark.live

CLOSE = {"Connection": "close"}


@pytest.fixture
def workers(tmp_path, backend):
    env = {"DATABASE_URL": str(backend["database_url"])} if backend else {}
    with LiveServer(tmp_path / "data", "--workers", "2", env=env).start() as server:
        httpx.post(f"{server.url}/__admin/reset", timeout=30)  # the start-up's health checks gone
        yield server


def test_two_workers_journal_count_and_inject_as_one_service(workers):
    url = workers.url
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: httpx.get(f"{url}/api/customers/w{n}", headers=CLOSE, timeout=30).status_code, range(200)))
    assert answers == [404] * 200
    listed = httpx.get(f"{url}/__admin/requests", params={"operationId": "getCustomer"}, timeout=30).json()
    assert sorted(e["path"] for e in listed["requests"]) == sorted(f"/api/customers/w{n}" for n in range(200))
    counted = httpx.post(f"{url}/__admin/requests/count", json={"status": 404}, timeout=30).json()
    assert counted == {"count": 200}
    coverage = httpx.get(f"{url}/__admin/coverage", timeout=30).json()
    (get_customer,) = [op for op in coverage["operations"] if op["operationId"] == "getCustomer"]
    assert get_customer["responses"]["404"] == 200

    # a rule added through one worker applies on both, and its times are shared: exactly 5 injections
    httpx.post(f"{url}/__admin/faults", json={"operationId": "listCustomers", "status": 503, "times": 5}, timeout=30)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: httpx.get(f"{url}/api/customers", headers=CLOSE, timeout=30).status_code, range(40)))
    assert sorted(statuses) == [200] * 35 + [503] * 5
    assert httpx.get(f"{url}/__admin/faults", timeout=30).json()[0]["remaining"] == 0

    # the metrics page of either worker adds up both
    pages = {httpx.get(f"{url}/metrics", headers=CLOSE, timeout=30).text for _ in range(6)}
    for page in pages:
        total = re.search(r'cms_mock_http_requests_total\{method="GET",operation="getCustomer",service="cms",status="404"\} (\S+)', page)
        assert total is not None
        assert float(total.group(1)) >= 200
        assert 'cms_mock_faults_injected_total{operation="listCustomers",service="cms",status="503"} 5.0' in page


def test_a_reset_through_one_worker_clears_what_every_worker_recorded(workers):
    url = workers.url
    for n in range(20):
        httpx.get(f"{url}/api/customers/r{n}", headers=CLOSE, timeout=30)
    httpx.post(f"{url}/__admin/faults", json={"operationId": "getCustomer", "status": 500}, timeout=30)
    assert httpx.post(f"{url}/__admin/reset", timeout=30).status_code == 204
    for _ in range(6):  # each worker answers some of these
        assert httpx.get(f"{url}/__admin/requests", headers=CLOSE, timeout=30).json()["total"] == 0
        assert httpx.get(f"{url}/__admin/coverage", headers=CLOSE, timeout=30).json()["summary"]["responses"]["covered"] == 0
    assert [httpx.get(f"{url}/api/customers/r0", headers=CLOSE, timeout=30).status_code for _ in range(6)] == [404] * 6  # the rule is gone


def test_a_delay_holds_only_its_own_request(workers):
    url = workers.url
    httpx.post(f"{url}/__admin/faults", json={"operationId": "getCustomer", "delay_ms": 3000, "times": 4}, timeout=30)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        slow = [pool.submit(httpx.get, f"{url}/api/customers/slow{n}", timeout=30) for n in range(4)]  # more than one per worker
        time.sleep(0.3)
        started = time.monotonic()
        assert httpx.get(f"{url}/api/customers", timeout=30).status_code == 200
        assert time.monotonic() - started < 2.5  # answered while the delayed ones wait
        assert [f.result().status_code for f in slow] == [404] * 4


def test_two_instances_on_one_database_share_the_journal_and_rules(tmp_path, postgres):
    url = postgres.database()
    with (
        LiveServer(tmp_path / "data-0", env={"DATABASE_URL": url}).start() as first,
        LiveServer(tmp_path / "data-1", env={"DATABASE_URL": url}).start() as second,
    ):
        httpx.post(f"{first.url}/__admin/reset", timeout=30)
        httpx.get(f"{first.url}/api/customers/from-first", timeout=30)
        httpx.get(f"{second.url}/api/customers/from-second", timeout=30)
        for server in (first, second):
            paths = [e["path"] for e in httpx.get(f"{server.url}/__admin/requests", params={"operationId": "getCustomer"}, timeout=30).json()["requests"]]
            assert paths == ["/api/customers/from-first", "/api/customers/from-second"]
        httpx.post(f"{first.url}/__admin/faults", json={"operationId": "getHealth", "status": 503, "times": 1}, timeout=30)
        assert httpx.get(f"{second.url}/health", timeout=30).status_code == 503
        assert httpx.get(f"{first.url}/health", timeout=30).status_code == 200


def test_a_journal_read_across_another_workers_new_file_misses_nothing(tmp_path):
    """Each worker starts a new journal file after JOURNAL_SIZE entries; a read at that moment
    once missed a batch (or saw one twice). Under four senders, every read holds exactly the
    newest 100, each once, and the request answered last before the read began."""
    with LiveServer(tmp_path / "data", "--workers", "2", env={"JOURNAL_SIZE": "100"}).start() as server:
        answered: list[str] = []
        stop = threading.Event()

        def send(n: int) -> None:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                while not stop.is_set():
                    path = f"/api/customers/x{n}-{time.monotonic_ns()}"
                    http.get(path, headers=CLOSE)
                    answered.append(path)

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            senders = [pool.submit(send, n) for n in range(4)]
            try:
                with httpx.Client(base_url=server.url, timeout=30) as reader:
                    while len(answered) < 250:
                        time.sleep(0.05)
                    checked = 0
                    for _ in range(100):
                        last, answered_before = answered[-1], len(answered)
                        paths = [e["path"] for e in reader.get("/__admin/requests", params={"operationId": "getCustomer"}).json()["requests"]]
                        assert len(paths) == len(set(paths)) == 100
                        # At most this many requests can have arrived after `last` (those answered
                        # during the read, and 7 in flight): fewer than 100, it is among the newest.
                        if len(answered) - answered_before + 7 < 100:
                            assert last in paths
                            checked += 1
                    assert checked >= 20  # the machine was not so slow that nothing was checked
            finally:
                stop.set()
                for sender in senders:
                    sender.result()
