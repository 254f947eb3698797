"""What the journal, coverage and metrics cost, and what bounds the journal's memory:
``python -m bench.observe``.

1. GET by id (wrk, 50 connections) on the JSON file store (10,000 customers) and, unless
   ``--backends file``, on PostgreSQL, in three modes (``MODES``) in alternating rounds on one
   machine, side by side (it is shared and noisy): the overhead is one minus the ratio of the
   medians. The cost is judged by the service's CPU time per request (its processes' own
   ``/proc`` figures), which other load on the machine does not change the way it changes
   requests a second; both are reported. Target: the journal and metrics cost under 10 %
   (``on`` against ``off``).
2. Memory: the service's resident memory (every process) before and after ``--requests``
   requests each with a 1 MiB body (the largest ``MAX_BODY_BYTES`` lets in), each journaled
   (the first 64 KiB of each body kept). Target: it stays bounded, under 100 MiB of growth.

Results go to ``bench/results/observe.json`` and ``observe.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import postgres
from bench.processes import Server, cpu_seconds, cpu_used, process_tree, rss_sum_mib
from bench.run import RESULTS
from tests.support.data import write_customers
from tests.support.ports import free_port
from tests.support.wrk import run_wrk

SIZE = 10_000
MODES = {"on": [], "off": ["--journal-size", "0", "--no-metrics"], "bare": ["--no-admin", "--no-metrics"]}
"""All on (the defaults); the journal and metrics off (coverage still counted: the control plane
is on); the control plane and metrics off, nothing recorded."""
OVERHEAD = 0.10
GROWTH_MIB = 100.0


def _command(port: int, store: list[str], mode: str) -> list[str]:
    return [sys.executable, "-m", "cms_mock", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *store, *MODES[mode]]


def overhead(store: list[str], rounds: int, seconds: float) -> dict[str, Any]:
    """GET by id with everything on and off, ``rounds`` times each, alternating."""
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(rounds):
        for mode in MODES:
            port = free_port()
            server = Server(_command(port, store, mode), port)
            try:
                run_wrk(server.url, "get", count=SIZE, connections=50, seconds=1)  # warm-up
                before = cpu_seconds(server.process.pid)
                result = run_wrk(server.url, "get", count=SIZE, connections=50, seconds=seconds)
                cpu[mode].append(cpu_used(before, cpu_seconds(server.process.pid)) / result["requests"] * 1e6)
                rates[mode].append(result["rps"])
            finally:
                server.stop()
            print(f"  GET by id, {mode:<4}: {rates[mode][-1]:,.0f} req/s, {cpu[mode][-1]:.0f} µs of CPU a request", flush=True)
    on, off, bare = (statistics.median(rates[mode]) for mode in MODES)
    cpu_on, cpu_off, cpu_bare = (statistics.median(cpu[mode]) for mode in MODES)
    return {
        "rps": rates,
        "cpu_us": cpu,
        "median_on": on,
        "median_off": off,
        "median_bare": bare,
        "cpu_on": cpu_on,
        "cpu_off": cpu_off,
        "cpu_bare": cpu_bare,
        "overhead": cpu_on / cpu_off - 1,
        "overhead_all": cpu_on / cpu_bare - 1,
        "overhead_rps": 1 - on / off,
        "pass": cpu_on / cpu_off - 1 < OVERHEAD,
    }


def memory(data_dir: Path, requests: int) -> dict[str, Any]:
    """RSS of every process of the service before and after ``requests`` 1 MiB bodies."""
    port = free_port()
    server = Server(_command(port, ["--data-dir", str(data_dir)], "on"), port)
    body = json.dumps({"name": "x" * (1024 * 1024 - 200)}).encode()  # 1 MiB: a 422, journaled
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for _ in range(200):  # warm-up: the journal's first files, the allocator's arenas
                client.post("/api/customers", content=body, headers={"Content-Type": "application/json"})
            before = rss_sum_mib(process_tree(server.process.pid))
            started = time.perf_counter()
            for n in range(requests):
                answer = client.post("/api/customers", content=body, headers={"Content-Type": "application/json"})
                assert answer.status_code == 422, answer.status_code
                if n % 10_000 == 0:
                    print(f"  {n:,} requests, RSS {rss_sum_mib(process_tree(server.process.pid)):.0f} MiB", flush=True)
            spent = time.perf_counter() - started
            after = rss_sum_mib(process_tree(server.process.pid))
            listed = client.get("/__admin/requests", params={"limit": 1}).json()
        journal_mib = sum(f.stat().st_size for f in Path(tempfile.gettempdir()).glob("cms-mock-state-*/journal-*")) / 2**20
    finally:
        server.stop()
    growth = after - before
    return {
        "requests": requests,
        "body_bytes": len(body),
        "seconds": spent,
        "rss_before_mib": before,
        "rss_after_mib": after,
        "growth_mib": growth,
        "journal_total": listed["total"],
        "journal_files_mib": journal_mib,
        "pass": growth < GROWTH_MIB,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.observe", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="file,postgres", help="stores for the overhead, of file,postgres (default both)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating on/off rounds (default 3)")
    parser.add_argument("--seconds", type=float, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--requests", type=int, default=100_000, help="1 MiB requests for the memory bound (default 100,000)")
    parser.add_argument("--keep-overhead", action="store_true", help="measure memory only; keep the overhead of the last run's observe.json")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "overhead": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-observe-") as tmp:
        data_dir = Path(tmp, "data")
        write_customers(data_dir, SIZE)
        backends = [] if args.keep_overhead else [b.strip() for b in args.backends.split(",") if b.strip()]
        if args.keep_overhead:
            report["overhead"] = json.loads((RESULTS / "observe.json").read_text())["overhead"]
        if "file" in backends:
            print("file store:", flush=True)
            report["overhead"]["file"] = overhead(["--data-dir", str(data_dir)], args.rounds, args.seconds)
        if "postgres" in backends:
            cluster = postgres.throwaway_cluster(free_port(), "--backends file")
            try:
                url = postgres.fresh_database(cluster.url(), "cms_bench_observe")
                postgres.seed(url, SIZE)
                print("PostgreSQL:", flush=True)
                report["overhead"]["postgres"] = overhead(["--database-url", url], args.rounds, args.seconds)
            finally:
                cluster.remove()
        print(f"memory, {args.requests:,} requests of 1 MiB:", flush=True)
        report["memory"] = memory(Path(tmp, "memory"), args.requests)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "observe.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "observe.md").write_text(markdown(report))
    print(markdown(report))
    return 0


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Journal, coverage and metrics: their cost ({report['date']}, {report['machine']})", ""]
    lines += [
        "GET by id, medians of alternating rounds: requests a second, and the service's CPU time a request.",
        "",
        "| store | all on | journal and metrics off | control plane and metrics off "
        "| journal + metrics cost, CPU (target < 10 %) | all of it, CPU | journal + metrics, req/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, f in report["overhead"].items():
        verdict = "pass" if f["pass"] else "FAIL"
        cells = [f"{f[f'median_{m}']:,.0f}/s, {f[f'cpu_{m}']:.0f} µs" for m in MODES]
        lines.append(f"| {backend} | {' | '.join(cells)} | {f['overhead']:+.1%} ({verdict}) | {f['overhead_all']:+.1%} | {-f['overhead_rps']:+.1%} |")
    m = report["memory"]
    lines += [
        "",
        f"Memory: {m['requests']:,} requests with {m['body_bytes'] / 2**20:.0f} MiB bodies in {m['seconds']:.0f} s: RSS {m['rss_before_mib']:.0f} -> "
        f"{m['rss_after_mib']:.0f} MiB (+{m['growth_mib']:.1f} MiB; target < {GROWTH_MIB:.0f}: {'pass' if m['pass'] else 'FAIL'}); "
        f"the journal held {m['journal_total']:,} entries in {m['journal_files_mib']:.0f} MiB of files.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
