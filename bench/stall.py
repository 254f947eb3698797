"""Whether a list query can stall the server: ``python -m bench.stall``.

A live server over ``--size`` customers on the JSON file store (``tests/support/data.py``). First
each query of ``QUERIES`` is timed alone (after one warm-up, which parses the records); then
two clients loop the worst one (``WORST``: nine sort keys, the direction changing at each)
while a third asks for ``/health`` every few milliseconds. Milliseconds, client side, median
and 95th percentile, and for a query alone also the time to its head (the query is worked out
before a body of any size goes out: the list without ``limit`` is 35 MB). Targets: every query
answered (its head) under ``QUERY_MS`` alone, ``/health`` under ``HEALTH_MS`` (the 95th
percentile) meanwhile.

``--before DIR`` runs the same measurements first on a server from another checkout of the
project (``git worktree add DIR HEAD``: the code before a change), one after the other in one
run, so the two are compared on the same machine at the same time of its load. Results go to
``bench/results/stall.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.processes import Server
from bench.run import RESULTS
from tests.support.data import write_customers
from tests.support.ports import free_port

WORST = "/api/customers?sort=-name,email,-phone,address,-company,status,-created_at,updated_at,-id&limit=1"
QUERIES = {
    "worst sort, limit 1": WORST,
    "worst sort, a page deep in": WORST.replace("limit=1", "limit=1000&offset=50000"),
    "worst sort, no limit (every record)": WORST.removesuffix("&limit=1"),
    "filtered, sorted page": "/api/customers?status=inactive&sort=-created_at&limit=50",
    "search q, sorted": "/api/customers?q=customer%204242&sort=-name&limit=50",
}
_PROJECT = Path(__file__).resolve().parents[1]
QUERY_MS = 200.0
HEALTH_MS = 50.0


def _get(connection: http.client.HTTPConnection, path: str, heads: list[float] | None = None) -> float:
    """Milliseconds of one GET, its body read whole; ``heads``: also until its head came (the
    query worked out, before a body of any size is sent)."""
    started = time.perf_counter()
    connection.request("GET", path)
    response = connection.getresponse()
    if heads is not None:
        heads.append((time.perf_counter() - started) * 1000)
    response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path} answered {response.status}")
    return (time.perf_counter() - started) * 1000


def _summary(spent: list[float]) -> dict[str, float]:
    ordered = sorted(spent)
    return {"p50_ms": statistics.median(ordered), "p95_ms": ordered[math.ceil(len(ordered) * 0.95) - 1], "max_ms": ordered[-1], "n": len(ordered)}


def alone(port: int, times: int) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        found = {}
        for label, path in QUERIES.items():
            _get(connection, path)  # the first query parses the records
            heads: list[float] = []
            whole = _summary([_get(connection, path, heads) for _ in range(times)])
            found[label] = {"path": path, **whole, "head_p50_ms": statistics.median(heads)}
        found["/health at rest"] = _summary([_get(connection, "/health") for _ in range(times)])
        return found
    finally:
        connection.close()


def under_load(port: int, seconds: float, clients: int = 2) -> dict[str, Any]:
    """``clients`` loops of ``WORST`` and one of ``/health`` (a pause of 5 ms between two), for ``seconds``."""
    stop = threading.Event()
    queries: list[float] = []
    health: list[float] = []

    def loop(path: str, into: list[float], pause: float) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            while not stop.is_set():
                into.append(_get(connection, path))
                time.sleep(pause)
        finally:
            connection.close()

    threads = [threading.Thread(target=loop, args=(WORST, queries, 0)) for _ in range(clients)]
    threads.append(threading.Thread(target=loop, args=("/health", health, 0.005)))
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return {"worst sort": _summary(queries), "/health": _summary(health)}


def measure(size: int, times: int, seconds: float, checkout: Path | None) -> dict[str, Any]:
    """One server (from ``checkout`` when given, else this project) over its own data."""
    with tempfile.TemporaryDirectory(prefix="bench-stall-") as tmp:
        write_customers(Path(tmp), size)
        port = free_port()
        # -P: the code comes from PYTHONPATH alone, not from the current directory
        command = [sys.executable, "-P", "-m", "cms_mock", "--host", "127.0.0.1", "--port", str(port), "--data-dir", tmp, "--log-level", "warning"]
        server = Server(command, port, env={**os.environ, "PYTHONPATH": str(checkout or _PROJECT)})
        try:
            return {"alone": alone(port, times), "under_load": under_load(port, seconds)}
        finally:
            server.stop()


def _verdict(result: dict[str, Any]) -> dict[str, bool]:
    queries = [row["head_p50_ms"] for row in result["alone"].values() if "path" in row]
    return {
        f"every query answered under {QUERY_MS:g} ms (median, to the head)": max(queries) < QUERY_MS,
        f"/health under {HEALTH_MS:g} ms meanwhile (p95)": result["under_load"]["/health"]["p95_ms"] < HEALTH_MS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--times", type=int, default=10, help="each query alone this many times")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the two clients loop the worst query")
    parser.add_argument("--before", type=Path, help="a checkout of the code to compare with, measured first")
    options = parser.parse_args(argv)
    runs: dict[str, Any] = {}
    if options.before is not None:
        runs["before"] = measure(options.size, options.times, options.seconds, options.before.resolve())
    runs["after" if options.before is not None else "now"] = measure(options.size, options.times, options.seconds, None)
    for result in runs.values():
        result["targets"] = _verdict(result)
    report = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "customers": options.size,
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "stall.json").write_text(json.dumps(report, indent=2) + "\n")
    for name, result in runs.items():
        print(f"{name}:")
        for label, row in [*result["alone"].items(), *(("under load: " + k, v) for k, v in result["under_load"].items())]:
            head = f"  head p50 {row['head_p50_ms']:7.1f} ms" if "head_p50_ms" in row else ""
            print(f"  {label:45} p50 {row['p50_ms']:9.1f} ms  p95 {row['p95_ms']:9.1f} ms  max {row['max_ms']:9.1f} ms  (n={row['n']}){head}")
        for target, met in result["targets"].items():
            print(f"  {'pass' if met else 'FAIL'}: {target}")
    return 0 if all(all(result["targets"].values()) for name, result in runs.items() if name != "before") else 1


if __name__ == "__main__":
    sys.exit(main())
