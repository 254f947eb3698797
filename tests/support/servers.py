"""Servers in processes of their own, as the tests run them: each in its own process group, tied
to the test process (if it dies, they stop), its output in a log file, stopped at the end of a
``with`` block.

``LiveServer`` runs the real ``cms-mock`` command as the consumers' plugin does
(``cms_mock.pytest_plugin.start_server``): the loopback socket is bound and listening before the
server starts and handed over with ``--fd``, so no other process can take the port meanwhile. It
is held here for the server's whole life: a restart serves the same port, and a connection left
waiting on it when a server stops, or made before the next one starts, is closed, never answered
by a server it was not sent to.
``--fd`` serves one process: a server with several workers binds a free port itself (``--port``),
which another process may take first.
"""

from __future__ import annotations

import functools
import os
import select
import signal
import socket
import subprocess
import sys
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from cms_mock.workers import tie_to_supervisor
from tests.support.ports import free_port


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


class ServerProcess:
    """A server's command (``command()``, answering on ``url``) in a process group of its own.

    Start it from the thread that stops it (the test's): the kernel ties the server to the
    thread that started it, and stops it when that thread ends.
    """

    log: Path
    """Where the process writes (standard output and error alike), appended to across restarts."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = {**os.environ, "LOG_LEVEL": "warning", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def handed_over(self) -> tuple[int, ...]:
        """The file descriptors the process inherits."""
        return ()

    def start(self, wait: bool = True) -> Self:
        """Start (or start again) the process, and with ``wait`` until it is healthy; a start
        that fails leaves nothing running."""
        with open(self.log, "ab") as log:
            # preexec_fn runs in the child before exec: tied to this process before it runs any code of its own
            self.process = subprocess.Popen(
                self.command(),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=self.handed_over(),
                preexec_fn=functools.partial(tie_to_supervisor, os.getpid()),
            )
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                self.stop(signal.SIGKILL)
                raise
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
        """Send ``sig`` to the process group (SIGKILL if it has not exited after ``timeout``
        seconds); the process's exit status."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.send_signal(signal.SIGKILL)
            return self.process.wait()

    def close(self) -> None:
        """Stop it for good."""
        self.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None) -> None:
        self.close()


def _one_process(args: tuple[str, ...], env: dict[str, str]) -> bool:
    """Whether the command serves from one process, which can serve a socket handed to it (``--fd``)."""
    workers = args[args.index("--workers") + 1] if "--workers" in args else env.get("WORKERS", "1")
    return int(workers) == 1


def _listening() -> socket.socket:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    return listener


class LiveServer(ServerProcess):
    """The real ``cms-mock`` command over ``data_dir``, on a loopback port of its own for as
    long as this object lives (``close()``, or the end of a ``with`` block, gives it up)."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self.data_dir = data_dir
        self.args = args
        self.listener = _listening() if _one_process(args, self.env) else None
        # Servers that are only stopped, never closed, give their port up when they are collected.
        self._release = weakref.finalize(self, self.listener.close) if self.listener else None
        self.port: int = self.listener.getsockname()[1] if self.listener else free_port()
        self.log = data_dir.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        where = ["--fd", str(self.listener.fileno())] if self.listener else ["--host", "127.0.0.1", "--port", str(self.port)]
        return [sys.executable, "-m", "cms_mock", *self.args, *where, "--data-dir", str(self.data_dir)]

    def handed_over(self) -> tuple[int, ...]:
        return (self.listener.fileno(),) if self.listener else ()

    def start(self, wait: bool = True) -> Self:
        self._turn_away()
        return super().start(wait)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        status = super().stop(sig, timeout)
        self._turn_away()
        return status

    def close(self) -> None:
        """Stop it, and give its port up."""
        self.stop()
        if self._release is not None:
            self._release()

    def _turn_away(self) -> None:
        """Close every connection waiting on the socket while no server runs: its client learns
        at once, and the next server never answers a request sent to the last."""
        while self._release is not None and self._release.alive and select.select([self.listener], [], [], 0)[0]:
            self.listener.accept()[0].close()


class MemoryServer(LiveServer):
    """The real command with ``--in-memory``, which takes no ``--data-dir``."""

    def command(self) -> list[str]:
        command = super().command()
        at = command.index("--data-dir")
        return [*command[:at], *command[at + 2 :], "--in-memory"]
