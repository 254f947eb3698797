"""Test fixtures: every test builds its own app over its own temporary data directory.

``client`` drives an app in-process (its lifespan runs, so the real store opens its file),
with ``blockbuster`` watching its event loop; ``live`` starts the real ``cms-mock`` command
under uvicorn on a free port, for whatever depends on the server: ports, signals, restarts,
concurrency.
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
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, NamedTuple

import blockbuster.blockbuster as blockbuster_module
import httpx
import pytest
from blockbuster import BlockBuster, BlockBusterFunction, BlockingError, blockbuster_ctx

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


class Allowed(NamedTuple):
    """A blocking call that may run on the event loop, and why it is cheap there."""

    function: str
    """As blockbuster names it (``os.stat``, ``io.BufferedReader.read``...), or ``EVERY`` watched function."""
    file: str
    caller: str
    """The function of ``file`` under which the call is allowed (anywhere below it on the stack)."""
    why: str


EVERY = "*"

ALLOWED_ON_THE_LOOP = (
    Allowed("os.stat", "cms_mock/stores/datafile.py", "signature", why="one stat of the data file: its inode, size and time, from the kernel's cache"),
    Allowed("os.stat", "cms_mock/stores/file.py", "_lock", why="the lock file's identity, checked once the lock is taken without waiting"),
    Allowed("os.stat", "cms_mock/stores/file.py", "problem", why="the health check's look at the data directory: a stat"),
    Allowed("os.access", "cms_mock/stores/file.py", "problem", why="the health check's look at the data file: a permission check on a cached inode"),
    Allowed(
        "os.write", "cms_mock/state/local.py", "record", why="a line appended to this worker's journal: the page cache takes it, nothing waits for the disk"
    ),
    Allowed(
        "io.BufferedReader.read", "cms_mock/http/documents.py", "__init__", why="the favicon, a small file of the package, read once as the middleware is built"
    ),
    Allowed("os.stat", "/mimetypes.py", "init", why="the system's MIME type tables, looked for once per process (starlette's own tests allow it)"),
    Allowed("io.TextIOWrapper.write", "logging/__init__.py", "emit", why="a log line to the process's stream (in tests, the file pytest captures it in)"),
    Allowed("io.BufferedWriter.write", "logging/__init__.py", "emit", why="the same log line, as the text stream passes it to its buffer"),
    Allowed(
        EVERY,
        "cms_mock/app.py",
        "lifespan",
        why="the app's start and stop: no request is served meanwhile (a store may wait for another worker's lock as it opens)",
    ),
    Allowed(
        EVERY,
        "cms_mock/metrics.py",
        "render",
        why="GET /metrics: the process's figures read from /proc (kernel memory, not the disk); with several workers, small files",
    ),
    Allowed(
        EVERY, "asyncpg/connect_utils.py", "_parse_connect_dsn_and_args", why="asyncpg looks for a password file and client certificates as the pool connects"
    ),
)
"""Calls that block but are cheap and local. Anything else that blocks (waits on a lock, syncs,
reads or parses a whole file) runs off the loop."""


class BlockingSeen(BlockingError):
    """A ``BlockingError`` that is also kept: the app answers an unexpected exception with a 500
    and a failed commit with a 503, so a blocking call could hide behind an answer a test accepts."""

    seen: ClassVar[list[str]] = []

    def __init__(self, func: str) -> None:
        super().__init__(func)
        ours = [frame for frame in traceback.extract_stack() if f"{os.sep}cms_mock{os.sep}" in frame.filename]
        self.seen.append(f"{func} in {ours[-1].name} ({ours[-1].filename}:{ours[-1].lineno})" if ours else func)


def _flock_returns_at_once(_fd: object, operation: int, *_: object) -> bool:
    """Letting go of a ``flock``, or taking it with ``LOCK_NB``, never waits; taking it otherwise
    waits for every other holder."""
    return operation == fcntl.LOCK_UN or bool(operation & fcntl.LOCK_NB)


@pytest.fixture
def blockbuster() -> Iterator[BlockBuster]:
    """Blocking calls made by our code on an event loop raise ``BlockingError`` (as starlette's
    tests use ``blockbuster``), and fail the test even when the app turned them into an answer.

    Beyond blockbuster's own list (sleeps, file reads and writes, sockets, ``stat``...), the calls
    that wait on another process or on the disk: ``flock`` without ``LOCK_NB``, ``fsync``,
    ``fdatasync``. The loop watched is whichever runs our code: the test client runs the app on
    a loop in a thread of its own, and blockbuster asks the calling thread for its running loop.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(blockbuster_module, "BlockingError", BlockingSeen)
        patch.setattr(BlockingSeen, "seen", [])
        with blockbuster_ctx("cms_mock") as watcher:
            watcher.functions["fcntl.flock"] = BlockBusterFunction(None, "fcntl.flock", scanned_modules="cms_mock", can_block_predicate=_flock_returns_at_once)
            for name in ("os.fsync", "os.fdatasync"):
                watcher.functions[name] = BlockBusterFunction(None, name, scanned_modules="cms_mock")
            for allowed in ALLOWED_ON_THE_LOOP:
                for function in watcher.functions.values() if allowed.function == EVERY else [watcher.functions[allowed.function]]:
                    function.can_block_in(allowed.file, allowed.caller)
            for function in watcher.functions.values():
                function.activate()
            yield watcher
        assert not BlockingSeen.seen, f"blocking calls on the event loop: {', '.join(BlockingSeen.seen)}"


@pytest.fixture
def client(tmp_path: Path, backend: dict[str, object], blockbuster: BlockBuster) -> Iterator[httpx.Client]:
    with build_client(tmp_path, **backend) as test_client:
        yield test_client


@pytest.fixture
def profile_client(tmp_path: Path, backend: dict[str, object], blockbuster: BlockBuster) -> Iterator[httpx.Client]:
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


class MemoryServer(LiveServer):
    """The real command with ``--in-memory``, which takes no ``--data-dir``."""

    def command(self) -> list[str]:
        command = super().command()
        at = command.index("--data-dir")
        return [*command[:at], *command[at + 2 :], "--in-memory"]


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
