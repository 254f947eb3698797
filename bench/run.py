"""The benchmark: the real service under uvicorn, driven by wrk over loopback, on each store.

For each worker count, each backend and each data size N it pre-fills the store with N
customers (a temporary DATA_DIR for the JSON file; a fresh database of a throwaway PostgreSQL
server, loaded with COPY, for PostgreSQL), starts ``cms-mock``, times the start to the first
200 of ``/health``, reads the whole list with a few sequential requests (seconds, MB/s and the
service's resident memory while it streams) and drives each operation with wrk. A raw ASGI app
under the same uvicorn (``bench/floor.py``) is measured in the same run, so every figure also
has a ratio to that floor. Results go to ``bench/results/`` as JSON and Markdown, with the
targets (``bench/report.py``) marked pass or fail.

PostgreSQL runs with its durable defaults (``bench/postgres.py``). Its runs skip wrk's
``GET list`` (50 connections each reading the whole largest list) and ``mixed`` (which lists too): the
list is measured by the sequential reads.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import http.client
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench import postgres
from bench.processes import Server, cpu_seconds, cpu_used, peak_rss_mib, process_tree, rss_sum_mib, start_service, worker_processes
from bench.queries import measure_queries
from bench.report import markdown, targets
from tests.support.data import customer_id, write_customers
from tests.support.ports import free_port
from tests.support.wrk import run_wrk

RESULTS = Path(__file__).with_name("results")
BACKENDS = ("file", "postgres")
DEFAULT_SIZES = {"file": "1000,10000,100000", "postgres": "10000,100000,1000000"}
# (label, crud.lua operation, connections, the status that counts as done)
OPERATIONS = [
    ("GET by id", "get", 50, "200"),
    ("GET by id, 10 conns", "get", 10, "200"),
    ("GET list", "list", 50, "200"),
    ("POST", "post", 50, "201"),
    ("DELETE", "delete", 50, "204"),
    ("PUT", "put", 50, "200"),
    ("mixed 80/20", "mixed", 50, None),
]
POSTGRES_OPERATIONS = [op for op in OPERATIONS if op[1] not in ("list", "mixed")]


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        raise SystemExit("wrk is missing: sudo apt-get install wrk")
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def service_command(port: int, workers: int, store: list[str]) -> list[str]:
    return [sys.executable, "-m", "cms_mock", "--host", "127.0.0.1", "--port", str(port), *store, "--workers", str(workers), "--log-level", "warning"]


def measure(
    url: str,
    operation: str,
    connections: int,
    done_status: str | None,
    count: int,
    seconds: float,
    ids_file: Path | None = None,
    watch: dict[str, int] | None = None,
) -> dict[str, Any]:
    """One operation with wrk. ``watch``: process trees (name: root pid) whose CPU time per
    request is reported (the service; PostgreSQL's server)."""
    watch = watch or {}
    before = {name: cpu_seconds(pid) for name, pid in watch.items()}
    result = run_wrk(url, operation, count=count, connections=connections, seconds=seconds, ids_file=ids_file)
    cpu = {name: cpu_used(before[name], cpu_seconds(pid)) / max(result["requests"], 1) * 1e6 for name, pid in watch.items()}
    done = result["requests"] if done_status is None else result["statuses"].get(done_status, 0)
    unexpected = {s: n for s, n in result["statuses"].items() if not s.startswith("2")}
    return {
        "rps": done / (result["duration_us"] / 1e6),
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "errors": sum(result["errors"].values()) + sum(unexpected.values()),
        "statuses": result["statuses"],
        "cpu_us_per_request": cpu,
    }


def measure_health(url: str, times: int = 5) -> float:
    """Milliseconds of one ``/health`` (it counts the records), the median of a few."""
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        httpx.get(f"{url}/health", timeout=60).raise_for_status()
        spent.append(time.perf_counter() - started)
    return statistics.median(spent) * 1000


_RECORD = b'{"id":'


def read_list(port: int, expected: int) -> tuple[float, int]:
    """One full ``GET /api/customers/``, read as it comes: (seconds, bytes); checks every record came."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("GET", "/api/customers/")
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"GET /api/customers/ answered {response.status}")
        size, records, tail, first, last = 0, 0, b"", b"", b""
        while chunk := response.read(1 << 20):
            first = first or chunk[:1]
            records += (tail + chunk).count(_RECORD)
            tail, last = chunk[-(len(_RECORD) - 1) :], chunk[-1:]
            size += len(chunk)
    finally:
        connection.close()
    seconds = time.perf_counter() - started
    if (first, last, records) != (b"[", b"]", expected):
        raise RuntimeError(f"the list was not whole: {records} records of {expected}, starting {first!r}, ending {last!r}")
    return seconds, size


def measure_list(server: Server, expected: int, requests: int, watch: dict[str, int]) -> dict[str, Any]:
    """``requests`` sequential full lists: seconds each, MB/s, and the service's memory while
    it streams: the sum of VmRSS over all its processes (supervisor, multiprocessing's resource
    tracker and workers) and over its workers alone, sampled every 20 ms."""
    pids = process_tree(server.process.pid)
    workers = worker_processes(pids)
    before = rss_sum_mib(pids)
    peak, peak_workers = before, rss_sum_mib(workers)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_workers
        while not done.wait(0.02):
            peak, peak_workers = max(peak, rss_sum_mib(pids)), max(peak_workers, rss_sum_mib(workers))

    sampler = threading.Thread(target=sample, daemon=True)
    cpu = {name: cpu_seconds(pid) for name, pid in watch.items()}
    sampler.start()
    try:
        reads = [read_list(server.port, expected) for _ in range(requests)]
    finally:
        done.set()
        sampler.join()
    cpu_per_list = {name: cpu_used(cpu[name], cpu_seconds(pid)) / requests for name, pid in watch.items()}
    seconds = [s for s, _ in reads]
    size = reads[0][1]
    median = statistics.median(seconds)
    return {
        "requests": requests,
        "seconds": seconds,
        "median_s": median,
        "mb": size / 1e6,
        "mb_per_s": size / 1e6 / median,
        "rss_before_mib": before,
        "peak_rss_sum_mib": max(peak, rss_sum_mib(pids)),
        "peak_rss_workers_mib": max(peak_workers, rss_sum_mib(workers)),
        "vmhwm_sum_mib": rss_sum_mib(pids, "VmHWM:"),
        "processes": len(pids),
        "worker_processes": len(workers),
        "cpu_s_per_list": cpu_per_list,
    }


def bench_floor(app: str, workers: int, seconds: float) -> float:
    """Requests/s of GET by id on a reference app under the same uvicorn and wrk."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning", "--no-access-log", "--workers", str(workers)]
    server = Server(command, port, ready_path="/api/customers/" + customer_id(0))
    try:
        run_wrk(server.url, "get", count=1, connections=50, seconds=1)
        return float(run_wrk(server.url, "get", count=1, connections=50, seconds=seconds)["rps"])
    finally:
        server.stop()


@dataclasses.dataclass(frozen=True)
class Options:
    seconds: float
    """Per wrk operation."""
    list_requests: int
    startups: int
    postgres_pid: int | None = None
    """The PostgreSQL server's postmaster, when it runs here: its CPU per request is reported."""


def run_operations(
    server: Server,
    row: dict[str, Any],
    operations: list[tuple[str, str, int, str | None]],
    options: Options,
    floor_rps: float,
    ids_to_delete: Callable[[dict[str, Any]], list[str]],
    after_delete: Callable[[], None] = lambda: None,
) -> None:
    """Warm up, time ``/health`` and the full list, then each operation with wrk, into ``row``."""
    size, workers, backend = row["customers"], row["workers"], row["backend"]
    row["startups_s"] = server.startups
    run_wrk(server.url, "get", count=size, connections=50, seconds=1)  # warm-up
    row["health_ms"] = measure_health(server.url)
    watch = {"service": server.process.pid}
    if backend == "postgres" and options.postgres_pid:
        watch["postgres"] = options.postgres_pid
    row["list"] = listing = measure_list(server, size, options.list_requests, watch)
    print(
        f"  {backend:<8} N={size:>7} workers={workers} full list {listing['median_s']:6.2f} s ({listing['mb']:.0f} MB, {listing['mb_per_s']:.0f} MB/s), "
        f"RSS {listing['rss_before_mib']:.0f} -> {listing['peak_rss_sum_mib']:.0f} MiB; health {row['health_ms']:.1f} ms; start-up {row['startup_s']:.2f} s",
        flush=True,
    )
    rss_before = rss_sum_mib(process_tree(server.process.pid))
    row["queries"] = measure_queries(server.port, size)
    row["queries_rss_mib"] = [rss_before, rss_sum_mib(process_tree(server.process.pid))]
    for label, figures in row["queries"].items():
        print(
            f"  {backend:<8} N={size:>7} workers={workers} {label:<28} p50 {figures['rest_p50_ms']:6.1f} ms p95 {figures['rest_p95_ms']:6.1f} ms; "
            f"after a write p50 {figures['after_write_p50_ms']:6.1f} ms",
            flush=True,
        )
    with tempfile.TemporaryDirectory(prefix="bench-ids-") as tmp:
        for label, operation, connections, done_status in operations:
            ids_file = None
            if operation == "delete":  # delete what the POST run created, back to N customers
                ids = ids_to_delete(row["operations"])
                ids_file = Path(tmp) / "created-ids.txt"
                ids_file.write_text("\n".join(ids) + "\n")
            figures = measure(server.url, operation, connections, done_status, size, options.seconds, ids_file, watch)
            if operation == "delete":
                after_delete()
                figures["ids"] = len(ids)
                figures["ids_exhausted"] = figures["statuses"].get("204", 0) >= len(ids)  # then the rate is a lower bound
            figures["ratio_to_floor"] = figures["rps"] / floor_rps
            row["operations"][label] = figures
            rps, p50, p99 = figures["rps"], figures["p50_ms"], figures["p99_ms"]
            note = " (ran out of ids: a lower bound)" if figures.get("ids_exhausted") else ""
            print(
                f"  {backend:<8} N={size:>7} workers={workers} {label:<20} {rps:>8.0f}/s p50 {p50:6.1f} ms p99 {p99:6.1f} ms errors {figures['errors']}{note}",
                flush=True,
            )
    row["peak_rss_mib"] = peak_rss_mib(server.process.pid)


def bench_file(size: int, workers: int, options: Options, floor_rps: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{size}-") as tmp:
        data_dir = Path(tmp)
        started = time.perf_counter()
        write_customers(data_dir, size)
        seed_s = time.perf_counter() - started
        port = free_port()
        server = start_service(service_command(port, workers, ["--data-dir", str(data_dir)]), port, options.startups)
        row: dict[str, Any] = {"backend": "file", "customers": size, "workers": workers, "seed_s": seed_s, "startup_s": server.startup_s, "operations": {}}

        def created(_: dict[str, Any]) -> list[str]:
            prefix = customer_id(0)[:24]
            listed = httpx.get(f"{server.url}/api/customers/", timeout=120).json()
            return [c["id"] for c in listed if not c["id"].startswith(prefix)]

        try:
            run_operations(server, row, OPERATIONS, options, floor_rps, created)
            row["file_mib"] = (data_dir / "customers.json").stat().st_size / 2**20
        finally:
            server.stop()
    return row


def bench_postgres(server_url: str, size: int, workers: int, options: Options, floor_rps: float) -> dict[str, Any]:
    """One size on a fresh database; the DELETE run deletes what POST created, topped up (with
    customers added directly) so that it cannot run out of ids within its time."""
    name = f"cms_bench_{size}_{workers}"
    url = postgres.fresh_database(server_url, name)
    try:
        loaded = postgres.seed(url, size)
        port = free_port()
        server = start_service(service_command(port, workers, ["--database-url", url]), port, options.startups)
        row: dict[str, Any] = {"backend": "postgres", "customers": size, "workers": workers, **loaded, "startup_s": server.startup_s, "operations": {}}

        def created(done: dict[str, Any]) -> list[str]:
            ids = postgres.created_ids(url)
            fastest = max(done[label]["rps"] for label in ("POST", "GET by id"))  # a delete is no faster than a read
            wanted = math.ceil(fastest * options.seconds * 1.5)
            return ids + postgres.add_customers(url, wanted - len(ids)) if len(ids) < wanted else ids

        def leftovers() -> None:
            row["left_after_delete"] = postgres.remove_created(url)

        try:
            run_operations(server, row, POSTGRES_OPERATIONS, options, floor_rps, created, leftovers)
        finally:
            server.stop()
    finally:
        postgres.drop_database(server_url, name)
    return row


def _sizes(text: str) -> list[int]:
    return [int(s.replace("_", "")) for s in text.split(",") if s.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=",".join(BACKENDS), help="stores to measure, of file,postgres (default both)")
    parser.add_argument("--sizes", help="customer counts for every backend chosen (default: file 1000,10000,100000; postgres 10000,100000,1000000)")
    parser.add_argument("--file-sizes", default=DEFAULT_SIZES["file"], help="customer counts for the JSON file (default %(default)s)")
    parser.add_argument("--postgres-sizes", default=DEFAULT_SIZES["postgres"], help="customer counts for PostgreSQL (default %(default)s)")
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts (default 1,2)")
    parser.add_argument("--seconds", "--duration", type=float, default=5, help="seconds per wrk operation (default 5)")
    parser.add_argument("--list-requests", type=int, default=3, help="sequential full lists per size (default 3)")
    parser.add_argument("--startups", type=int, default=3, help="starts of the service per size, the median reported (default 3)")
    parser.add_argument("--postgres-url", help="a PostgreSQL server to use (it creates and drops databases cms_bench_*) instead of a throwaway one")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(sorted(unknown))}: choose from {', '.join(BACKENDS)}")
    sizes = {b: _sizes(args.sizes or getattr(args, f"{b}_sizes")) for b in backends}
    ensure_wrk()
    began = time.perf_counter()
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "cores": os.cpu_count(),
        "seconds": args.seconds,
        "list_requests": args.list_requests,
        "startups": args.startups,
        "backends": backends,
        "sizes": sizes,
        "floor_rps": {},
        "connexion_floor_rps": {},
        "rows": [],
    }
    cluster = None
    server_url = args.postgres_url
    if "postgres" in backends and server_url is None:
        cluster = postgres.throwaway_cluster(free_port(), "--postgres-url, or --backends file")
        server_url = cluster.url()
    options = Options(args.seconds, args.list_requests, args.startups, cluster.postmaster_pid() if cluster else None)
    try:
        if server_url:
            report["postgres"] = postgres.settings(server_url)
            print("PostgreSQL: " + ", ".join(f"{k} {v}" for k, v in report["postgres"].items()), flush=True)
        for workers in (int(w) for w in args.workers.split(",")):
            report["floor_rps"][workers] = bench_floor("bench.floor:app", workers, args.seconds)
            report["connexion_floor_rps"][workers] = bench_floor("bench.connexion_floor:app", workers, args.seconds)
            floors = report["floor_rps"][workers], report["connexion_floor_rps"][workers]
            print(f"floor, {workers} worker(s): {floors[0]:,.0f} req/s; connexion's: {floors[1]:,.0f}", flush=True)
            for backend in backends:
                for size in sizes[backend]:
                    if backend == "file":
                        row = bench_file(size, workers, options, report["floor_rps"][workers])
                    else:
                        assert server_url is not None
                        row = bench_postgres(server_url, size, workers, options, report["floor_rps"][workers])
                    report["rows"].append(row)
    finally:
        if cluster is not None:
            cluster.remove()
    report["duration_s"] = time.perf_counter() - began
    report["targets"] = targets(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(markdown(report))
    print(markdown(report))
    return 0
