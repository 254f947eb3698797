"""Test fixtures: every test builds its own app over its own temporary data directory.

``client`` drives an app in-process (its lifespan runs, so the real store opens its file);
``live`` starts the real ``cms-mock`` command under uvicorn on a free port, for whatever
depends on the server: ports, signals, restarts, concurrency.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cms_mock.app import create_app
from cms_mock.settings import Settings
from tests.postgres import Cluster, server_binaries

NODE_DIR = Path(__file__).parent / "node"

NEW_CUSTOMER = {
    "name": "Alice Johnson",
    "email": "alice@example.com",
    "phone": "+1-555-0200",
    "address": "789 Oak St, Boston, MA 02101",
    "company": "Manufacturing Co",
    "status": "active",
}

NEW_PROFILE = {
    "first_name": "Ann",
    "last_name": "Lee",
    "email": "ann@example.com",
    "phone_number": "+1-555-0300",
    "address": "1 Elm Street, Springfield",
    "date_of_birth": "1990-01-31",
}


def build_client(data_dir: Path, **settings: object):
    """An in-process client of a strict app (responses validated against the spec)."""
    settings.setdefault("debug", True)
    app = create_app(Settings(data_dir=data_dir, **settings))
    return app.test_client()


def require(component: str, why: str) -> None:
    """Skip a test whose component is missing, except in CI (``CI=true``), where that fails the
    run: a check that quietly does not run proves nothing."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{component} is missing; {why}")
    pytest.skip(f"{component} is not installed (with CI=true this fails)")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A throwaway PostgreSQL server for the whole session (see ``tests/postgres.py``)."""
    bindir = server_binaries()
    if bindir is None:
        require("PostgreSQL", ".ci/run installs Debian's postgresql package")
    assert bindir is not None
    cluster = Cluster(bindir, free_port())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


BACKENDS = ["file", "postgres"]
"""The stores the API suite runs over: the seed's JSON file, and PostgreSQL."""


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> dict[str, object]:
    """Settings that put a test's records in one backend: a new database for PostgreSQL."""
    if request.param == "postgres":
        return {"database_url": request.getfixturevalue("postgres").database()}
    return {}


@pytest.fixture
def client(tmp_path: Path, backend: dict[str, object]) -> Iterator[httpx.Client]:
    with build_client(tmp_path, **backend) as test_client:
        yield test_client


@pytest.fixture
def profile_client(tmp_path: Path, backend: dict[str, object]) -> Iterator[httpx.Client]:
    with build_client(tmp_path, service="profile", **backend) as test_client:
        yield test_client


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Until ``url/health`` answers 200; fails at once if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout}s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """The real ``cms-mock`` command in its own process group, on a free loopback port."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.args = args
        self.env = {**os.environ, "LOG_LEVEL": "warning", **(env or {})}
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "cms_mock", *self.args, "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(self.data_dir)]

    def start(self, wait: bool = True) -> LiveServer:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.command(), env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        assert self.process is not None
        try:
            wait_healthy(self.url, self.process, timeout)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}: {self.output()}") from None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def send_signal(self, sig: int) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.send_signal(signal.SIGKILL)
            return self.process.wait()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A running CMS over its own data directory."""
    server = LiveServer(tmp_path / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def node_bin() -> Path:
    """``tests/node/node_modules/.bin``: tools nobody here wrote, installed by ``npm ci`` from the
    lock file when missing or older than it. Without npm their tests are skipped, except in CI
    (``CI=true``), where a missing tool is a failure: a check that quietly does not run proves nothing.
    """
    npm = shutil.which("npm")
    if npm is None:
        require("npm", ".ci/run installs Node and npm")
    installed = NODE_DIR / "node_modules" / ".package-lock.json"
    # The suite runs in several processes (pytest-xdist): one installs while the others wait.
    with (NODE_DIR / "package-lock.json").open("rb") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if not installed.exists() or installed.stat().st_mtime < (NODE_DIR / "package-lock.json").stat().st_mtime:
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, capture_output=True, timeout=900)
    return NODE_DIR / "node_modules" / ".bin"
