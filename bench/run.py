"""The benchmark: the real service under uvicorn, driven by wrk over loopback.

For each worker count and each data size N it pre-fills a temporary DATA_DIR with N
customers, starts ``cms-mock``, times the start to the first 200, and drives each operation
with wrk; a raw ASGI app under the same uvicorn (``bench/floor.py``) is measured in the same
run, so every figure also has a ratio to that floor. Results go to ``bench/results/`` as JSON
and Markdown.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.dataset import customer_id, write_customers
from bench.load import run_wrk

RESULTS = Path(__file__).with_name("results")
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


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        raise SystemExit("wrk is missing: sudo apt-get install wrk")
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_tree(pid: int) -> list[int]:
    children = [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/stat") if _parent(p) == pid]
    return [pid, *[c for child in children for c in process_tree(child)]]


def _parent(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def peak_rss_mib(pid: int) -> float:
    """The largest peak RSS (VmHWM) among the server's processes: what one worker needs."""
    peaks = []
    for process in process_tree(pid):
        try:
            status = Path(f"/proc/{process}/status").read_text()
        except OSError:
            continue
        peaks += [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")]
    return max(peaks) / 1024


class Server:
    def __init__(self, command: list[str], port: int, ready_path: str = "/health") -> None:
        self.url = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{command} exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}{ready_path}", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.01)
        self.startup_s = time.perf_counter() - started

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(60)


def measure(url: str, operation: str, connections: int, done_status: str | None, count: int, seconds: float, ids_file: Path | None = None) -> dict[str, Any]:
    result = run_wrk(url, operation, count=count, connections=connections, seconds=seconds, ids_file=ids_file)
    done = result["requests"] if done_status is None else result["statuses"].get(done_status, 0)
    unexpected = {s: n for s, n in result["statuses"].items() if not s.startswith("2")}
    return {
        "rps": done / (result["duration_us"] / 1e6),
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "errors": sum(result["errors"].values()) + sum(unexpected.values()),
        "statuses": result["statuses"],
    }


def bench_floor(app: str, workers: int, seconds: float) -> float:
    """Requests/s of GET by id on a reference app under the same uvicorn and wrk."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--log-level", "warning", "--no-access-log", "--workers", str(workers)]
    server = Server(command, port, ready_path="/api/customers/" + customer_id(0))
    try:
        run_wrk(server.url, "get", count=1, connections=50, seconds=1)
        return run_wrk(server.url, "get", count=1, connections=50, seconds=seconds)["rps"]
    finally:
        server.stop()


def bench_size(size: int, workers: int, seconds: float, floor_rps: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{size}-") as tmp:
        data_dir = Path(tmp)
        write_customers(data_dir, size)
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "cms_mock",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ]
        server = Server(command, port)
        row: dict[str, Any] = {"customers": size, "workers": workers, "startup_s": server.startup_s, "operations": {}}
        try:
            run_wrk(server.url, "get", count=size, connections=50, seconds=1)  # warm-up
            for label, operation, connections, done_status in OPERATIONS:
                ids_file = None
                if operation == "delete":  # delete what the POST run created, back to N customers
                    ids_file = data_dir / "created-ids.txt"
                    prefix = customer_id(0)[:24]
                    listed = httpx.get(f"{server.url}/api/customers/", timeout=120).json()
                    ids_file.write_text("\n".join(c["id"] for c in listed if not c["id"].startswith(prefix)) + "\n")
                figures = measure(server.url, operation, connections, done_status, size, seconds, ids_file)
                figures["ratio_to_floor"] = figures["rps"] / floor_rps
                row["operations"][label] = figures
                rps, p50, p99 = figures["rps"], figures["p50_ms"], figures["p99_ms"]
                print(f"  N={size:>6} workers={workers} {label:<20} {rps:>8.0f}/s p50 {p50:6.1f} ms p99 {p99:6.1f} ms errors {figures['errors']}", flush=True)
            row["peak_rss_mib"] = peak_rss_mib(server.process.pid)
            row["file_mib"] = (data_dir / "customers.json").stat().st_size / 2**20
        finally:
            server.stop()
    return row


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Run {report['date']} on {report['machine']}; {report['seconds']:.0f} s per operation, loopback, wrk.",
        "",
        "Floor (raw ASGI app, same uvicorn): " + ", ".join(f"{w} worker(s) {rps:,.0f} req/s" for w, rps in report["floor_rps"].items()),
        "",
        "Connexion's floor (one-operation AsyncApp, default middleware, same body): "
        + ", ".join(f"{w} worker(s) {rps:,.0f} req/s" for w, rps in report["connexion_floor_rps"].items()),
        "",
        "| workers | N | operation | req/s | ratio to floor | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        for label, f in row["operations"].items():
            figures = f"{f['rps']:,.0f} | {f['ratio_to_floor']:.3f} | {f['p50_ms']:.1f} | {f['p99_ms']:.1f} | {f['errors']}"
            lines.append(f"| {row['workers']} | {row['customers']:,} | {label} | {figures} |")
    lines += ["", "| workers | N | start-up to first 200 | peak RSS (one process) | data file |", "|---|---|---|---|---|"]
    for row in report["rows"]:
        lines.append(f"| {row['workers']} | {row['customers']:,} | {row['startup_s']:.2f} s | {row['peak_rss_mib']:.0f} MiB | {row['file_mib']:.1f} MiB |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000", help="customer counts (default 1000,10000,100000)")
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts (default 1,2)")
    parser.add_argument("--seconds", type=float, default=5, help="seconds per operation (default 5)")
    args = parser.parse_args(argv)
    ensure_wrk()
    sizes = [int(s) for s in args.sizes.split(",")]
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
        "seconds": args.seconds,
        "floor_rps": {},
        "connexion_floor_rps": {},
        "rows": [],
    }
    for workers in (int(w) for w in args.workers.split(",")):
        report["floor_rps"][workers] = bench_floor("bench.floor:app", workers, args.seconds)
        report["connexion_floor_rps"][workers] = bench_floor("bench.connexion_floor:app", workers, args.seconds)
        print(f"floor, {workers} worker(s): {report['floor_rps'][workers]:,.0f} req/s; connexion's: {report['connexion_floor_rps'][workers]:,.0f}", flush=True)
        for size in sizes:
            report["rows"].append(bench_size(size, workers, args.seconds, report["floor_rps"][workers]))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(markdown(report))
    print(markdown(report))
    return 0
