"""Test fixtures and hooks: every test builds its own app over its own temporary data directory.

``client`` drives an app in-process (its lifespan runs, so the real store opens its file),
with ``blockbuster`` watching its event loop; ``live_server`` starts the real ``cms-mock``
command under uvicorn on a socket of its own, for whatever depends on the server: ports,
signals, restarts, concurrency. What the tests share besides fixtures is in ``tests/support``.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import blockbuster.blockbuster as blockbuster_module
import httpx
import pytest
from blockbuster import BlockBuster, BlockBusterFunction, blockbuster_ctx

from tests.support.app import build_client
from tests.support.blocking import ALLOWED_ON_THE_LOOP, EVERY, BlockingSeen, flock_returns_at_once
from tests.support.ports import free_port
from tests.support.postgres import Cluster, server_binaries
from tests.support.servers import LiveServer
from tests.support.tools import NODE_DIR, require


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs the PostgreSQL cluster is marked ``postgres``: it asks for the
    ``postgres`` fixture, or one of its parameters is the PostgreSQL backend.

    Then the modules of the longest kinds go first (outside tools and fuzzing, then live
    servers), each module's tests in their order: the processes of ``-n 2 --dist loadfile``
    take modules in this order, and the many short in-process tests even out the end."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if "postgres" in getattr(item, "fixturenames", ()) or (callspec is not None and "postgres" in callspec.params.values()):
            item.add_marker(pytest.mark.postgres)
    weight: dict[Path, int] = {}
    for item in items:
        kind = 2 if item.get_closest_marker("tools") or item.get_closest_marker("fuzz") else 1 if item.get_closest_marker("live") else 0
        weight[item.path] = max(weight.get(item.path, 0), kind)
    items.sort(key=lambda item: -weight[item.path])


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A throwaway PostgreSQL server for the whole session (see ``tests/support/postgres.py``)."""
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
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend(request: pytest.FixtureRequest, backend_kind: str) -> dict[str, object]:
    """Settings that put a test's records in one backend: a new database for PostgreSQL."""
    if backend_kind == "postgres":
        return {"database_url": request.getfixturevalue("postgres").database()}
    return {}


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
            watcher.functions["fcntl.flock"] = BlockBusterFunction(None, "fcntl.flock", scanned_modules="cms_mock", can_block_predicate=flock_returns_at_once)
            for name in ("os.fsync", "os.fdatasync"):
                watcher.functions[name] = BlockBusterFunction(None, name, scanned_modules="cms_mock")
            for allowed in ALLOWED_ON_THE_LOOP:
                for function in watcher.functions.values() if allowed.function == EVERY else [watcher.functions[allowed.function]]:
                    function.can_block_in(allowed.file, allowed.caller)
            for function in watcher.functions.values():
                function.activate()
            yield watcher
        assert not BlockingSeen.seen, f"blocking calls on the event loop: {', '.join(BlockingSeen.seen)}"


class SharedApps:
    """In-process apps kept for a module's tests, one per service and backend, each reset through
    the control plane before it is handed to a test (``@pytest.mark.shared_app``)."""

    def __init__(self, root: Path, request: pytest.FixtureRequest) -> None:
        self._root = root
        self._request = request
        self._clients: dict[tuple[str, str], httpx.Client] = {}
        self._stack = contextlib.ExitStack()

    def client(self, service: str, backend: str) -> httpx.Client:
        key = (service, backend)
        if key not in self._clients:
            settings = {"database_url": self._request.getfixturevalue("postgres").database()} if backend == "postgres" else {}
            self._clients[key] = self._stack.enter_context(build_client(self._root / f"{service}-{backend}", service=service, **settings))
        client = self._clients[key]
        assert client.post("/__admin/reset").status_code == 204
        return client

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="module")
def shared_apps(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedApps]:
    apps = SharedApps(tmp_path_factory.mktemp("shared"), request)
    yield apps
    apps.close()


def _client(request: pytest.FixtureRequest, tmp_path: Path, backend_kind: str, service: str) -> Iterator[httpx.Client]:
    """A fresh app over the test's own directory or database; in a ``shared_app`` module (unless
    the test is marked ``own_app``), the module's app of that service and backend, reset."""
    if request.node.get_closest_marker("shared_app") and not request.node.get_closest_marker("own_app"):
        yield request.getfixturevalue("shared_apps").client(service, backend_kind)
        return
    with build_client(tmp_path, service=service, **request.getfixturevalue("backend")) as test_client:
        yield test_client


@pytest.fixture
def client(request: pytest.FixtureRequest, tmp_path: Path, backend_kind: str, blockbuster: BlockBuster) -> Iterator[httpx.Client]:
    yield from _client(request, tmp_path, backend_kind, "cms")


@pytest.fixture
def profile_client(request: pytest.FixtureRequest, tmp_path: Path, backend_kind: str, blockbuster: BlockBuster) -> Iterator[httpx.Client]:
    yield from _client(request, tmp_path, backend_kind, "profile")


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A running CMS over its own data directory."""
    with LiveServer(tmp_path / "data").start() as server:
        yield server


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
