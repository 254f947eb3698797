"""What a read of the request journal costs when the journal holds large entries:
``python -m bench.journal [--before DIR]``.

The journal is filled through its backend, the directory a server's workers share: ``--entries``
entries (1,000) as the recorder makes them, each with a 59 KB JSON body and 1,900 headers, written
by the code measured (its own ``LocalState.record``, its own format). A server (one process, the
JSON file store) is then started over that directory, and, client side and from ``/proc``:

1. one read, ``GET /__admin/requests?limit=1``: its time, and the service's RSS before and after;
2. one count, ``POST /__admin/requests/count`` with a ``body`` matcher (every entry looked at);
3. three reads at once: the service's peak RSS while they run (sampled every 10 ms).

With ``--before DIR`` (a checkout of other code, such as ``git worktree add DIR HEAD``), the
same is measured with that code (``PYTHONPATH=DIR``, and ``python -P``: not the working directory's) first, then with this one, side by side on
one machine. Results go to ``bench/results/journal.json``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.processes import Server, process_tree, rss_sum_mib
from bench.run import RESULTS
from cms_mock.workers import STATE_DIR, SUPERVISOR
from tests.support.ports import free_port

BODY_BYTES = 59_000
HEADERS = 1_900
THIS_CODE = Path(__file__).resolve().parent.parent


def _body() -> list[dict[str, Any]]:
    """A JSON array of small objects, ``BODY_BYTES`` long as JSON."""
    items: list[dict[str, Any]] = []
    size = 2
    while size < BODY_BYTES - 64:
        item = {"n": len(items), "name": f"customer {len(items):06d}"}
        items.append(item)
        size += len(json.dumps(item, separators=(",", ":"))) + 1
    return items


_FILL = """
import asyncio, json, sys
from pathlib import Path
from cms_mock.state import entry_id, now
from cms_mock.state.local import LocalState

directory, entries, body, headers = Path(sys.argv[1]), int(sys.argv[2]), *json.loads(sys.stdin.read())

async def fill():
    journal = LocalState(directory, [], 1000)
    await journal.open()
    for _ in range(entries):
        await journal.record({
            "id": entry_id(), "time": now(), "method": "POST", "path": "/api/customers/", "query": "", "operationId": "createCustomer",
            "status": 422, "duration_ms": 1.0, "request": {"headers": headers, "body": body, "truncated": False},
            "response": {"headers": {"content-type": "application/json"}, "body": {"detail": "not a dict"}, "truncated": False},
        })
    await journal.close()

asyncio.run(fill())
"""
"""Run with the code measured: entries in its own format, through its own backend."""


def fill(code: Path, directory: Path, entries: int) -> None:
    headers = {"content-type": "application/json", **{f"x-bench-{n:04d}": f"value-{n:08d}" for n in range(HEADERS)}}
    given = json.dumps([_body(), headers]).encode()
    subprocess.run([sys.executable, "-P", "-c", _FILL, str(directory), str(entries)], input=given, env={**os.environ, "PYTHONPATH": str(code)}, check=True)


def _rss(server: Server) -> float:
    return rss_sum_mib(process_tree(server.process.pid))


def _timed(call: Any) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    answer = call()
    return time.perf_counter() - started, answer


def measure(code: Path, entries: int) -> dict[str, Any]:
    """The figures of one server running the code in ``code``."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as data:
        shared = Path(data, "state")
        fill(code, shared / "cms", entries)
        command = [sys.executable, "-P", "-m", "cms_mock", "--host", "127.0.0.1", "--port", str(port), "--data-dir", data, "--log-level", "warning"]
        # the directory a supervisor names for its workers (a worker of ours is told its supervisor: this process)
        env = {**os.environ, "PYTHONPATH": str(code), STATE_DIR: str(shared), SUPERVISOR: str(os.getpid())}
        server = Server(command, port, env=env)
        try:
            with httpx.Client(base_url=server.url, timeout=600) as client:
                rss_before = _rss(server)
                read_s, listed = _timed(lambda: client.get("/__admin/requests", params={"limit": 1}))
                rss_after = _rss(server)
                total = listed.json()["total"]
                count_s, counted = _timed(lambda: client.post("/__admin/requests/count", json={"body": [{"n": 0}]}))
            peak = [_rss(server)]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak.append(_rss(server))
                    time.sleep(0.01)

            sampler = threading.Thread(target=sample)
            sampler.start()
            with concurrent.futures.ThreadPoolExecutor(3) as pool:
                started = time.perf_counter()
                answers = list(pool.map(lambda _: httpx.get(f"{server.url}/__admin/requests", params={"limit": 1}, timeout=600), range(3)))
                three_s = time.perf_counter() - started
            done.set()
            sampler.join()
        finally:
            server.stop()
    statuses = {listed.status_code, counted.status_code, *(answer.status_code for answer in answers)}
    if statuses != {200}:
        raise RuntimeError(f"the journal's reads answered {sorted(statuses)}")
    return {
        "entries": total,
        "read_s": read_s,
        "rss_before_mib": rss_before,
        "rss_after_read_mib": rss_after,
        "count_s": count_s,
        "count": counted.json()["count"],
        "three_reads_s": three_s,
        "three_reads_peak_rss_mib": max(peak),
    }


def _line(name: str, figures: dict[str, Any]) -> str:
    return (
        f"{name:>6}: {figures['entries']} entries; one read (limit=1) {figures['read_s']:.2f} s, RSS {figures['rss_before_mib']:.0f} -> "
        f"{figures['rss_after_read_mib']:.0f} MiB; a count with a body matcher {figures['count_s']:.2f} s; "
        f"three reads at once {figures['three_reads_s']:.2f} s, peak RSS {figures['three_reads_peak_rss_mib']:.0f} MiB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--entries", type=int, default=1_000)
    parser.add_argument("--before", type=Path, help="a checkout of the code to compare with, run first")
    options = parser.parse_args(argv)
    found: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    runs = [("before", options.before)] if options.before else []
    for name, code in [*runs, ("after" if options.before else "this", THIS_CODE)]:
        found[name] = measure(code.resolve(), options.entries)
        print(_line(name, found[name]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "journal.json").write_text(json.dumps(found, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
