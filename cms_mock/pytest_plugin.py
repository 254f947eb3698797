"""A pytest plugin for test suites that talk to cms-mock: ``pip install 'cms-mock[pytest]'`` registers it.

Fixtures, with no configuration:

- ``cms_mock_server`` / ``profile_mock_server`` (session): a real server of that service
  (``cms-mock`` under uvicorn, a subprocess) on a free port over its own temporary data
  directory, stopped at the end of the session however the session ends; or, with
  ``--cms-mock-url`` / ``--profile-mock-url``, a server that is already running.
- ``cms_mock`` / ``profile_mock`` (function): the session's server, reset before the test
  (its coverage counts kept: the coverage after a run is the whole run's;
  ``--cms-mock-coverage FILE`` writes it as a page at the end).

Each is a ``MockServer``: ``.url``, ``.reset()``, ``.load(records)``, ``.records()``,
``.snapshot(name)``, ``.restore(name)``; what the code under test sent, ``.requests(**filters)``
and ``.count(**matcher)``; failures on purpose, ``.fault(**rule)``; and ``.coverage()``: all
through the control plane (``/__admin``). ``ServerProcess`` runs a server as ``start_server``
does, for a suite that needs more: a restart, a signal, a command of its own. The standard
library's HTTP client only: the plugin adds no dependency to the consumer's suite (of cms-mock,
it imports only its table of settings and what ties a server's life to the process that started it).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import pytest

from cms_mock.settings import variables
from cms_mock.workers import tie_to_supervisor

_SERVICES = {"cms": "cms-mock", "profile": "profile-mock"}
"""Each service's fixtures and options are named after these."""

_SETTINGS = frozenset(variables())
"""cms-mock's settings and what it tells its workers: the consumer's own ``DATABASE_URL`` or
``API_KEY`` are not the mock's, so none reaches a server started here."""

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Loopback never goes through ``HTTP_PROXY``."""


def listening() -> socket.socket:
    """A socket listening on a free loopback port, to hand to a server (``ServerProcess``)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    return listener


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Until ``url/health`` answers 200: RuntimeError if ``process`` exits first, TimeoutError if time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with {process.returncode}")
        with contextlib.suppress(OSError), _DIRECT.open(f"{url}/health", timeout=1) as response:  # OSError: nothing answers yet
            if response.status == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not become healthy within {timeout} s")


class ServerProcess:
    """A server's ``command`` in a session (a process group) of its own, tied to this process, on loopback ``ports``.

    With a ``listener`` (``listening()``), the command serves that socket: it inherits its
    descriptor, and the command names it (cms-mock's ``--fd``). The port is never free between
    its choice and the server's start, so another process (another pytest-xdist worker's server)
    cannot take it and be taken for this server. The socket is held until ``close()``: a
    ``start()`` after a ``stop()`` serves the same port, and a connection left waiting on it while
    no server runs is closed, never answered by a server it was not sent to. Without one, the
    command binds ``ports`` itself (a server with several workers cannot serve a socket handed
    over), and another process may take them first. ``base``: where the API's paths, its health
    check among them, begin (a spec's ``servers`` path, such as ``/v2``).

    The process asks to be stopped when the thread that started it ends, however it ends
    (``workers``): start it from a thread that lives as long as the server should. ``env`` is its
    whole environment (None: this process's); ``log`` takes its standard output and error alike,
    emptied by the first start and appended to by the next. The end of a ``with`` block closes it.
    """

    def __init__(
        self,
        command: Sequence[str],
        log: Path,
        env: Mapping[str, str] | None = None,
        *,
        listener: socket.socket | None = None,
        ports: Sequence[int] = (),
        base: str = "",
    ) -> None:
        self.command = list(command)
        self.base = base
        self.log = log
        self.env = env
        self.listener = listener
        self.ports = (listener.getsockname()[1],) if listener else tuple(ports)
        self.process: subprocess.Popen[bytes] | None = None
        # One that is only stopped, never closed, gives its port up when it is collected.
        self._release = weakref.finalize(self, listener.close) if listener else None

    @property
    def port(self) -> int:
        return self.ports[0]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True, timeout: float = 30) -> Self:
        """Start the command (again, after a ``stop()``), and with ``wait`` until it is healthy
        (``wait_ready``); a start that fails leaves nothing running."""
        self._turn_away()
        with open(self.log, "ab" if self.process else "wb") as log:
            # preexec_fn runs in the child before exec: tied to this process before it runs any code of its own
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
                pass_fds=(self.listener.fileno(),) if self.listener else (),
                preexec_fn=functools.partial(tie_to_supervisor, os.getpid()),
            )
        if wait:
            try:
                self.wait_ready(timeout)
            except BaseException:  # Ctrl-C included
                self.stop()
                raise
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        """Until each port's health check answers 200; RuntimeError, with the log, if the process
        exits first or ``timeout`` seconds (for each port) run out."""
        if self.process is None:
            raise RuntimeError("the server was never started")
        for port in self.ports:
            try:
                wait_healthy(f"http://127.0.0.1:{port}{self.base}", self.process, timeout)
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(f"{exc}: {self.output()}") from None

    def output(self) -> str:
        """What the process wrote to its log."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the process group: the server and its workers."""
        if self.process is None:
            raise RuntimeError("the server was never started")
        os.killpg(self.process.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Send ``sig`` to the process group, SIGKILL if the process has not exited after
        ``timeout`` seconds; its exit status (0 if it never started)."""
        if self.process is not None and self.process.poll() is None:
            self.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.send_signal(signal.SIGKILL)
                self.process.wait()
        self._turn_away()
        return self.process.returncode if self.process else 0

    def close(self) -> None:
        """Stop it, and give its port up."""
        self.stop()
        if self._release is not None:
            self._release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _turn_away(self) -> None:
        """Close every connection waiting on the socket while no server runs: its client learns
        at once, and the next server never answers a request sent to the last."""
        while self.listener is not None and self.listener.fileno() != -1 and select.select([self.listener], [], [], 0)[0]:
            self.listener.accept()[0].close()


class MockServer:
    """One running cms-mock service, driven through its control plane."""

    def __init__(self, url: str, server: ServerProcess | None = None) -> None:
        self.url = url.rstrip("/")
        self._server = server
        """The server's process when this plugin started it: it holds the port, so whatever answers there is this server."""

    @property
    def _process(self) -> subprocess.Popen[bytes] | None:
        """The server's process, None for a server of the consumer's (``--cms-mock-url``)."""
        return self._server.process if self._server else None

    def reset(self, keep_coverage: bool = False) -> None:
        """Every record back to the start state (the samples, or the fixtures file's); the
        journal and fault rules cleared, and the coverage counts unless ``keep_coverage``."""
        self._call("POST", "/__admin/reset" + ("?keep=coverage" if keep_coverage else ""))

    def load(self, records: dict[str, Any] | list[dict[str, Any]]) -> None:
        """Replace every record: an object keyed by id, or a list; ids and timestamps optional."""
        self._call("PUT", "/__admin/records", records)

    def records(self) -> dict[str, Any]:
        """Every record, keyed by id, in creation order."""
        found: dict[str, Any] = self._call("GET", "/__admin/records")
        return found

    def snapshot(self, name: str) -> None:
        self._call("PUT", f"/__admin/snapshots/{urllib.parse.quote(name, safe='')}")

    def restore(self, name: str) -> None:
        self._call("POST", f"/__admin/snapshots/{urllib.parse.quote(name, safe='')}/restore")

    def requests(self, **filters: str | int) -> list[dict[str, Any]]:
        """The journal's requests, oldest first, that match every filter given: ``method``,
        ``path``, ``operationId``, ``status``, and ``limit`` (only the most recent N)."""
        query = urllib.parse.urlencode(filters)
        found: list[dict[str, Any]] = self._call("GET", f"/__admin/requests?{query}")["requests"]
        return found

    def count(self, **matcher: Any) -> int:
        """How many journaled requests match: ``method``, ``path``, ``operationId``, ``status``,
        and ``body`` (a subset of the request's JSON body), each optional."""
        counted: int = self._call("POST", "/__admin/requests/count", matcher)["count"]
        return counted

    def fault(self, operationId: str, **rule: Any) -> dict[str, Any]:  # the spec's name for it
        """Make ``operationId`` fail (``status``, a declared error) or slow down (``delay_ms``),
        with ``probability``, ``times`` and ``seed``; the rule, with its ``id``. A reset ends it."""
        made: dict[str, Any] = self._call("POST", "/__admin/faults", {"operationId": operationId, **rule})
        return made

    def coverage(self) -> dict[str, Any]:
        """Every operation and declared status, with how many answers had it since the reset."""
        report: dict[str, Any] = self._call("GET", "/__admin/coverage")
        return report

    def coverage_page(self) -> str:
        """The coverage as the page a person reads (``--cms-mock-coverage FILE`` writes it)."""
        request = urllib.request.Request(self.url + "/__admin/coverage", headers={"Accept": "text/html"})
        with _DIRECT.open(request, timeout=30) as response:
            return str(response.read().decode("utf-8"))

    def _call(self, method: str, path: str, body: object = None) -> Any:
        if self._process is not None and self._process.poll() is not None:  # its port still accepts: the call would wait for nobody
            raise AssertionError(f"cms-mock at {self.url} has exited with {self._process.returncode}")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
        if self._process is None and os.environ.get("API_KEY"):  # a server of the consumer's (--cms-mock-url)
            request.add_header("X-API-Key", os.environ["API_KEY"])
        try:
            with _DIRECT.open(request, timeout=30) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"cms-mock {method} {path} answered {exc.code}: {exc.read().decode(errors='replace')}") from None
        except (urllib.error.URLError, OSError) as exc:  # nothing there (a wrong --cms-mock-url, a server that died)
            raise AssertionError(f"cms-mock at {self.url} cannot be reached: {getattr(exc, 'reason', exc)}") from None
        return json.loads(payload) if payload else None

    def __enter__(self) -> MockServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server this plugin started, then give up its port."""
        if self._server is not None:
            self._server.close()


def start_server(service: str, data_dir: Path, fixtures: Path | None = None, timeout: float = 30) -> MockServer:
    """A new server of ``service`` on a free loopback port, once its ``/health`` answers 200.

    The port is bound here and handed to the server (``ServerProcess``), which asks to be stopped
    when this process ends, however it ends: call this from a thread that lives as long as the
    server should.
    """
    listener = listening()
    # -P: the consumer's working directory is not on the path, so nothing there named cms_mock runs
    command = [sys.executable, "-P", "-m", "cms_mock", "serve", service, "--fd", str(listener.fileno()), "--data-dir", str(data_dir)]
    command += ["--log-level", "warning", *(["--fixtures", str(fixtures)] if fixtures else [])]
    env = {name: value for name, value in os.environ.items() if name not in _SETTINGS}
    server = ServerProcess(command, data_dir.parent / f"{service}-mock.log", env, listener=listener)
    try:
        mock = MockServer(server.url, server.start(timeout=timeout))
        if fixtures:
            mock.reset()  # the fixtures are the start state, not only what a reset restores
    except BaseException:  # never leave a server behind, whatever stopped the start (Ctrl-C included)
        server.close()
        raise
    return mock


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cms-mock", "cms-mock servers for the tests")
    for service, name in _SERVICES.items():
        group.addoption(f"--{name}-url", default=None, help=f"use the {service} service running at this URL instead of starting one")
        group.addoption(f"--{name}-fixtures", default=None, type=Path, help=f"records the {service} service starts from and resets to")
        group.addoption(f"--{name}-coverage", default=None, type=Path, help=f"write the {service} service's contract coverage page (HTML) here at the end")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the run is: pytest stops as it does on Ctrl-C, tearing every fixture down."""


@contextlib.contextmanager
def _sigterm_ends_the_run() -> Iterator[None]:
    """While it lasts, SIGTERM (a CI's cancel, ``timeout``, ``docker stop``) ends the run as Ctrl-C does.

    SIGTERM's default ends this process at once: no fixture's teardown, so a temporary directory
    stays behind (the server stops either way: it asked to be told of this process's end). A
    handler someone else installed is theirs and stays, and outside the main thread Python cannot
    handle signals: both leave SIGTERM as it was.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
        raise Terminated("SIGTERM: the run stops; every fixture's teardown runs")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is interrupt:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def running_server(service: str, fixtures: Path | None = None) -> Iterator[MockServer]:
    """A server of ``service`` over a temporary directory of its own, for as long as this lasts.

    Whatever ends the run, the server ends with it: a normal end or Ctrl-C stops it here, SIGTERM
    is turned into Ctrl-C so that this teardown runs too, and if this process is killed outright
    the server stops itself. The directory goes with the teardown; the server removes nothing.
    """
    with (
        tempfile.TemporaryDirectory(prefix=f"{service}-mock-") as work,
        _sigterm_ends_the_run(),
        start_server(service, Path(work) / "data", fixtures) as server,
    ):
        yield server


def _session_server(request: pytest.FixtureRequest, service: str) -> Iterator[MockServer]:
    name = _SERVICES[service].replace("-", "_")
    url = request.config.getoption(f"{name}_url")
    page = request.config.getoption(f"{name}_coverage")
    if url:
        yield MockServer(url)
        return
    with running_server(service, request.config.getoption(f"{name}_fixtures")) as server:
        yield server
        if page:
            page.write_text(server.coverage_page(), encoding="utf-8")


@pytest.fixture(scope="session")
def cms_mock_server(request: pytest.FixtureRequest) -> Iterator[MockServer]:
    """A CMS for the whole session (started here, or ``--cms-mock-url``)."""
    yield from _session_server(request, "cms")


@pytest.fixture(scope="session")
def profile_mock_server(request: pytest.FixtureRequest) -> Iterator[MockServer]:
    """A Customer Profile Service for the whole session (started here, or ``--profile-mock-url``)."""
    yield from _session_server(request, "profile")


@pytest.fixture
def cms_mock(cms_mock_server: MockServer) -> MockServer:
    """The session's CMS, reset before this test."""
    cms_mock_server.reset(keep_coverage=True)
    return cms_mock_server


@pytest.fixture
def profile_mock(profile_mock_server: MockServer) -> MockServer:
    """The session's profile service, reset before this test."""
    profile_mock_server.reset(keep_coverage=True)
    return profile_mock_server
