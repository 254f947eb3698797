"""Drive the service with wrk (a Python client would be the bottleneck) and read its figures: the
benchmark's operations and the soak test's load (``crud.lua``)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("crud.lua")


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk (bash .ci/run does it)")
    return path


def run_wrk(
    url: str, operation: str, *, count: int, connections: int, seconds: float, read_share: float = 0.8, ids_file: Path | None = None, threads: int = 2
) -> dict[str, Any]:
    """One wrk run of ``crud.lua``; returns its JSON line (requests, latencies in µs, statuses, errors)."""
    threads = min(threads, connections)
    script_args = [operation, str(count), str(read_share), str(threads), *([str(ids_file)] if ids_file else [])]
    command = [wrk_path(), f"-t{threads}", f"-c{connections}", f"-d{round(seconds)}s", "--timeout", "10s", "-s", str(SCRIPT), url, "--", *script_args]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    line = next(line for line in output.splitlines() if line.startswith("WRK_JSON "))
    result: dict[str, Any] = json.loads(line.removeprefix("WRK_JSON "))
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result
