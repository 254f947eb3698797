"""The benchmark's servers and what it reads of their processes: resident memory and CPU time,
from ``/proc``, over a server's whole tree of processes (supervisor and workers).

``Server`` times a start to the first 200 of a ready path, polled every 10 ms; it runs any
command (the reference apps under uvicorn, another checkout's service), which binds its own port.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import time
from pathlib import Path

import httpx


def process_tree(pid: int) -> list[int]:
    children = [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/stat") if _parent(p) == pid]
    return [pid, *[c for child in children for c in process_tree(child)]]


def _parent(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _status_kib(pid: int, field: str) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith(field)), 0)


def peak_rss_mib(pid: int) -> float:
    """The largest peak RSS (VmHWM) among the server's processes: what one worker needs."""
    return max(_status_kib(p, "VmHWM:") for p in process_tree(pid)) / 1024


def rss_sum_mib(pids: list[int], field: str = "VmRSS:") -> float:
    return sum(_status_kib(p, field) for p in pids) / 1024


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(root: int) -> dict[int, float]:
    """CPU time (user + system) so far of each process of ``root``'s tree."""
    spent = {}
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        spent[pid] = (int(fields[11]) + int(fields[12])) / _TICKS
    return spent


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two ``cpu_seconds`` (a process gone by then is not counted)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


class Server:
    def __init__(self, command: list[str], port: int, ready_path: str = "/health", env: dict[str, str] | None = None) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        started = time.perf_counter()
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{command} exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}{ready_path}", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.01)
        self.startup_s = time.perf_counter() - started
        self.startups = [self.startup_s]

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(60)


def start_service(command: list[str], port: int, times: int) -> Server:
    """The service started ``times`` times (all but the last stopped at once): the last one
    runs, with the median start-up of all and each of them."""
    startups = []
    for _ in range(times - 1):
        server = Server(command, port)
        startups.append(server.startup_s)
        server.stop()
    server = Server(command, port)
    server.startups = [*startups, server.startup_s]
    server.startup_s = statistics.median(server.startups)
    return server


def worker_processes(pids: list[int]) -> list[int]:
    """The worker processes of ``cms-mock --workers N`` (multiprocessing's spawned children); the
    one process itself when it serves alone."""

    def spawned(pid: int) -> bool:
        try:
            return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False

    return [p for p in pids if spawned(p)] or pids[:1]
