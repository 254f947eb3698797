"""A throwaway PostgreSQL cluster for the tests: ``initdb`` in a temporary directory, on a
free port, as an unprivileged user, stopped and removed at the end of the session.

The server's binaries are found on ``PATH`` or where Debian installs them
(``/usr/lib/postgresql/<version>/bin``). ``initdb`` and ``postgres`` refuse to run as root, so
as root they run as the ``postgres`` user (which Debian's package creates).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg


def server_binaries() -> Path | None:
    """The directory of ``initdb``, ``pg_ctl`` and ``postgres``, or None when there is none."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return candidates[-1].parent if candidates else None


class Cluster:
    """One running PostgreSQL server; ``database()`` gives each test a database of its own.

    ``durable=True`` (the benchmark) keeps the server's defaults; the tests' server runs with
    ``fsync=off``, which only matters if the machine itself crashes (not a test's concern): a
    server stopped or killed keeps every commit in its WAL.
    """

    def __init__(self, bindir: Path, port: int, durable: bool = False) -> None:
        self.bindir = bindir
        self.port = port
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="cms-mock-pg-"))
        self.data = self.root / "data"
        self.user = "postgres" if os.geteuid() == 0 else None
        self._names = itertools.count(1)
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        return subprocess.run([*prefix, *command], check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> None:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale", "C")

    def start(self) -> None:
        """Start (or start again) the server."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=300" + ("" if self.durable else " -c fsync=off")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def postmaster_pid(self) -> int:
        """The server's main process (its backends are its children)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new, empty database's URL."""
        name = f"test_{next(self._names)}"
        self.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def execute(self, statements: str, database: str = "postgres") -> None:
        """Run SQL (several statements allowed) on a connection of its own, outside the service under test."""
        self._on(database, lambda connection: connection.execute(statements))

    def fetch(self, query: str, database: str = "postgres") -> list[asyncpg.Record]:
        return self._on(database, lambda connection: connection.fetch(query))  # type: ignore[no-any-return]

    def _on(self, database: str, action: Callable[[asyncpg.Connection], Awaitable[object]]) -> object:
        async def run() -> object:
            connection = await asyncpg.connect(self.url(database))
            try:
                return await action(connection)
            finally:
                await connection.close()

        return asyncio.run(run())

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "server.log").read_text(errors="replace")
        return ""
