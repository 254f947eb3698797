"""The real ``cms-mock`` command in a process of its own, as the tests run it: the consumers'
plugin's ``ServerProcess`` (a process group of its own, tied to the test process, its output in a
log file, stopped at the end of a ``with`` block), over a data directory.

Its loopback socket is bound before the server starts and handed over with ``--fd``, and held
for the object's whole life: a restart serves the same port. ``--fd`` serves one process: a
server with several workers binds a free port itself (``--port``), which another process may take first.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cms_mock.pytest_plugin import ServerProcess, listening, wait_healthy
from tests.support.ports import free_port

__all__ = ["LiveServer", "MemoryServer", "wait_healthy"]


def _one_process(args: tuple[str, ...], env: dict[str, str]) -> bool:
    """Whether the command serves from one process, which can serve a socket handed to it (``--fd``)."""
    workers = args[args.index("--workers") + 1] if "--workers" in args else env.get("WORKERS", "1")
    return int(workers) == 1


class LiveServer(ServerProcess):
    """The real ``cms-mock`` command over ``data_dir``, on a loopback port of its own for as
    long as this object lives (``close()``, or the end of a ``with`` block, gives it up);
    ``base``: where its API's paths begin (a served spec's ``servers`` path)."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None, base: str = "") -> None:
        self.data_dir = data_dir
        self.args = args
        merged = {**os.environ, "LOG_LEVEL": "warning", **(env or {})}
        listener = listening() if _one_process(args, merged) else None
        port = listener.getsockname()[1] if listener else free_port()
        where = ["--fd", str(listener.fileno())] if listener else ["--host", "127.0.0.1", "--port", str(port)]
        command = [sys.executable, "-m", "cms_mock", *args, *where, *self.storage()]
        super().__init__(command, data_dir.parent / f"server-{port}.log", merged, listener=listener, ports=() if listener else (port,), base=base)

    def storage(self) -> list[str]:
        """Where the server keeps its records: the arguments that say so."""
        return ["--data-dir", str(self.data_dir)]


class MemoryServer(LiveServer):
    """The real command with ``--in-memory``, which takes no ``--data-dir``."""

    def storage(self) -> list[str]:
        return ["--in-memory"]
