"""The pytest plugin as a consumer uses it: a separate project (pytester's temporary directory)
whose tests only name the fixtures, run by pytest in a subprocess that loads the plugin from
the installed package's entry point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.data import NEW_CUSTOMER
from tests.support.servers import LiveServer

pytestmark = pytest.mark.live

CONSUMER = """
import json, urllib.request

def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())

def test_my_service_creates_a_customer(cms_mock):
    made = post(cms_mock.url + "/api/customers", %(customer)r)
    assert made["id"] in cms_mock.records()

def test_each_test_starts_from_the_start_state(cms_mock):
    assert len(cms_mock.records()) == %(start)d

def test_loaded_records_are_served(cms_mock):
    cms_mock.load([{"id": "mine", **%(customer)r}])
    with urllib.request.urlopen(cms_mock.url + "/api/customers/mine") as response:
        assert json.loads(response.read())["name"] == %(customer)r["name"]

def test_profiles_too(profile_mock):
    profile_mock.snapshot("empty-later")
    profile_mock.load([])
    assert profile_mock.records() == {}
    profile_mock.restore("empty-later")
    assert len(profile_mock.records()) == 3

def test_what_my_service_sent_is_verified(cms_mock):
    post(cms_mock.url + "/api/customers", %(customer)r)
    assert cms_mock.count(method="POST", path="/api/customers", body={"name": %(customer)r["name"]}) == 1
    (sent,) = cms_mock.requests(operationId="createCustomer")
    assert sent["status"] == 201 and sent["request"]["body"] == %(customer)r

def test_my_service_survives_a_503(cms_mock):
    import urllib.error
    rule = cms_mock.fault("createCustomer", status=503, times=1)
    try:
        post(cms_mock.url + "/api/customers", %(customer)r)
        raise AssertionError("no 503")
    except urllib.error.HTTPError as failed:
        assert failed.code == 503 and rule["id"] in failed.read().decode()
    assert post(cms_mock.url + "/api/customers", %(customer)r)["name"] == %(customer)r["name"]
    assert len(cms_mock.records()) == %(start)d + 1

def test_coverage_is_the_whole_runs(cms_mock):
    def created():
        (create,) = [op for op in cms_mock.coverage()["operations"] if op["operationId"] == "createCustomer"]
        return create["responses"]["201"]
    before = created()
    assert before >= 1  # the tests before this one created customers too: a reset keeps coverage
    post(cms_mock.url + "/api/customers", %(customer)r)
    assert created() == before + 1

def test_the_session_server_is_shared(cms_mock_server, cms_mock):
    assert cms_mock_server.url == cms_mock.url
    print("MOCK-URL", cms_mock.url)
"""


def consumer(pytester: pytest.Pytester, start: int = 2) -> None:
    pytester.makepyfile(test_consumer=CONSUMER % {"customer": NEW_CUSTOMER, "start": start})


def test_a_consumer_suite_gets_running_servers_reset_before_each_test(pytester: pytest.Pytester, tmp_path):
    consumer(pytester)
    page = tmp_path / "coverage.html"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--cms-mock-coverage", str(page))
    result.assert_outcomes(passed=8)
    assert "MOCK-URL http://127.0.0.1:" in result.stdout.str()
    assert "<h1>Contract coverage: CMS Mock Service</h1>" in page.read_text()
    assert '<td class="hit">201<br><b>' in page.read_text()


def test_fixtures_are_the_start_state_and_a_running_server_can_be_used(pytester: pytest.Pytester, tmp_path):
    stamp = "2024-01-01T00:00:00.000000"
    fixtures = tmp_path / "fixtures.json"
    fixtures.write_text(json.dumps({f"f{n}": {"id": f"f{n}", **NEW_CUSTOMER, "created_at": stamp, "updated_at": stamp} for n in range(3)}))
    consumer(pytester, start=3)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--cms-mock-fixtures", str(fixtures), "-k", "not profiles")
    result.assert_outcomes(passed=7)

    consumer(pytester, start=2)  # that server starts from its samples
    with LiveServer(tmp_path / "data").start() as server:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--cms-mock-url", server.url, "-k", "not profiles")
        result.assert_outcomes(passed=7)
        assert f"MOCK-URL {server.url}" in result.stdout.str()


def test_a_server_that_is_not_there_is_a_clear_failure(pytester: pytest.Pytester):
    consumer(pytester)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--cms-mock-url", "http://127.0.0.1:9", "-k", "start_state")
    result.assert_outcomes(errors=1)
    assert "cms-mock at http://127.0.0.1:9 cannot be reached" in result.stdout.str()


WAITS = """
import os, pathlib, time

def test_waits_for_a_signal(cms_mock, profile_mock):
    pathlib.Path(os.environ["CONSUMER_READY"]).write_text("")
    time.sleep(600)
"""


def _servers_of(parent: int) -> dict[int, Path]:
    """The cms-mock processes ``parent`` started, with the temporary directory each was given."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().decode().split("\0")
        except (OSError, ValueError, IndexError):  # not a process, or one that ended meanwhile
            continue
        if ppid == parent and "cms_mock" in command:
            found[int(entry.name)] = Path(command[command.index("--data-dir") + 1]).parent
    return found


def _running(pid: int) -> bool:
    """Neither gone nor a zombie (which whichever process adopted it may never reap)."""
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) not in {"Z", "X"}
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_run_ended_by_a_signal_leaves_no_server_running(pytester: pytest.Pytester, tmp_path, monkeypatch, sig):
    """SIGTERM is what a CI's cancel, ``timeout`` or ``docker stop`` sends: the run stops with its
    teardown, so the servers stop and their directories go. SIGKILL leaves no teardown: the servers
    stop by themselves."""
    pytester.makepyfile(test_waits=WAITS)
    ready = tmp_path / "ready"
    monkeypatch.setenv("CONSUMER_READY", str(ready))
    monkeypatch.setenv("TMPDIR", str(pytester.mkdir("tmp")))
    with open(tmp_path / "output", "wb") as output:
        run = pytester.popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_waits.py"], stdout=output, stderr=subprocess.STDOUT)
    servers: dict[int, Path] = {}
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists(), (tmp_path / "output").read_text()
        servers = _servers_of(run.pid)
        assert len(servers) == 2
        assert all(directory.is_dir() for directory in servers.values())

        run.send_signal(sig)
        assert run.wait(60) == (2 if sig == signal.SIGTERM else -signal.SIGKILL)  # 2: pytest's "interrupted"
        deadline = time.monotonic() + 60
        while any(_running(pid) for pid in servers) and time.monotonic() < deadline:  # a server killed outright still stops gracefully
            time.sleep(0.1)
        assert not [pid for pid in servers if _running(pid)]
        if sig == signal.SIGTERM:
            assert "Terminated: SIGTERM" in (tmp_path / "output").read_text()
            assert not any(directory.exists() for directory in servers.values())
    finally:
        for pid in servers:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
        if run.poll() is None:
            run.kill()
            run.wait()


STRANGER = """
import http.server, os, socket, subprocess, threading

HEARD, HELD = [], []


class Stranger(http.server.BaseHTTPRequestHandler):
    \"\"\"Another server (another pytest-xdist worker's, say): it answers anything with 200.\"\"\"

    def do_GET(self):
        HEARD.append(f"{self.command} {self.path}")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_POST = do_PUT = do_GET

    def log_message(self, *args):
        pass


class TakesThePortFirst(subprocess.Popen):
    \"\"\"The plugin's worst moment: just before its server process starts, a stranger binds every
    port the launch refers to (a --port, or the port of a socket it passes down).\"\"\"

    def __init__(self, args, **options):
        ports = [int(args[args.index("--port") + 1])] if "--port" in args else []
        for fd in options.get("pass_fds", ()):
            with socket.socket(fileno=os.dup(fd)) as passed:
                ports.append(passed.getsockname()[1])
        for port in ports:
            try:
                stranger = http.server.ThreadingHTTPServer(("127.0.0.1", port), Stranger)
            except OSError:
                HELD.append(port)
                continue
            threading.Thread(target=stranger.serve_forever, daemon=True).start()
        super().__init__(args, **options)


subprocess.Popen = TakesThePortFirst


def test_the_server_answering_is_the_one_started(cms_mock):
    assert len(cms_mock.records()) == 2
    assert HEARD == []
    assert HELD == [int(cms_mock.url.rsplit(":", 1)[1])]
"""


def test_a_server_that_takes_the_port_is_never_taken_for_the_one_started(pytester: pytest.Pytester):
    """The stranger binds at the moment the plugin launches its server: it finds the port held."""
    pytester.makepyfile(test_stranger=STRANGER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
