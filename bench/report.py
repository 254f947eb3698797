"""The benchmark's Markdown, and its targets marked pass or fail.

Targets (measured, never tuned for):
- PostgreSQL: GET by id and writes flat from its smallest to its largest size (10,000 to
  1,000,000): the largest's requests/s at least 80 % of the smallest's;
- PostgreSQL's writes at its largest size at least the JSON file's at 10,000 (same workers);
- start-up at PostgreSQL's largest size under 2 s (process start to the first 200 of /health);
- the service's RSS (all its processes) under 250 MB while it streams the largest list;
- a filtered, sorted page at 100,000 customers (``bench/queries.py``): under 10 ms on
  PostgreSQL and under 50 ms on the JSON file (the median at rest, client side).
"""

from __future__ import annotations

from typing import Any

from bench.queries import TARGET_MS, TARGET_QUERY

WRITES = ("POST", "PUT", "DELETE")
FLAT = 0.8
STARTUP_S = 2.0
RSS_MB = 250.0
MIB = 2**20 / 1e6  # MB per MiB


def _row(report: dict[str, Any], backend: str, size: int, workers: int) -> dict[str, Any] | None:
    return next((r for r in report["rows"] if r.get("backend", "file") == backend and r["customers"] == size and r["workers"] == workers), None)


def _rps(row: dict[str, Any], label: str) -> str:
    figures = row["operations"].get(label)
    if figures is None:
        return "-"
    return ("≥" if figures.get("ids_exhausted") else "") + f"{figures['rps']:,.0f}"


def _compared(target: str, workers: int, measured: float, baseline: float, minimum: float) -> dict[str, Any]:
    """A target that is a ratio of two request rates of one run."""
    ratio = measured / baseline
    return {"target": target, "workers": workers, "detail": f"{measured:,.0f} / {baseline:,.0f} req/s", "ratio": ratio, "pass": ratio >= minimum}


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target per worker count: what was compared, the ratio or value, pass or fail."""
    found: list[dict[str, Any]] = []
    pg_sizes = sorted(report.get("sizes", {}).get("postgres", []))
    for workers in (int(w) for w in report["floor_rps"]):
        if len(pg_sizes) >= 2:
            found += _flat(report, pg_sizes, workers)
        if pg_sizes:
            found += _postgres_at_largest(report, pg_sizes[-1], workers)
    return found + _query_targets(report)


def _flat(report: dict[str, Any], pg_sizes: list[int], workers: int) -> list[dict[str, Any]]:
    small, large = _row(report, "postgres", pg_sizes[0], workers), _row(report, "postgres", pg_sizes[-1], workers)
    found = []
    for label in ("GET by id", *WRITES):
        if small and large and label in small["operations"] and label in large["operations"]:
            target = f"PostgreSQL {label} flat {pg_sizes[0]:,} -> {pg_sizes[-1]:,} (≥ {FLAT:.0%})"
            found.append(_compared(target, workers, large["operations"][label]["rps"], small["operations"][label]["rps"], FLAT))
    return found


def _postgres_at_largest(report: dict[str, Any], size: int, workers: int) -> list[dict[str, Any]]:
    large = _row(report, "postgres", size, workers)
    if not large:
        return []
    file_10k = _row(report, "file", 10_000, workers)
    found = []
    for label in WRITES:
        if file_10k and label in large["operations"] and label in file_10k["operations"]:
            target = f"PostgreSQL {label} at {size:,} ≥ JSON file at 10,000"
            found.append(_compared(target, workers, large["operations"][label]["rps"], file_10k["operations"][label]["rps"], 1.0))
    rss = large["list"]["peak_rss_sum_mib"] * MIB
    return [
        *found,
        {
            "target": f"PostgreSQL start-up at {size:,} < {STARTUP_S:.0f} s",
            "workers": workers,
            "detail": f"{large['startup_s']:.2f} s (median of {len(large.get('startups_s', [0]))})",
            "ratio": large["startup_s"] / STARTUP_S,
            "pass": large["startup_s"] < STARTUP_S,
        },
        {
            "target": f"PostgreSQL RSS streaming the {size:,} list < {RSS_MB:.0f} MB",
            "workers": workers,
            "detail": f"{rss:.0f} MB (sum of {large['list']['processes']} processes; workers {large['list']['peak_rss_workers_mib'] * MIB:.0f} MB)",
            "ratio": rss / RSS_MB,
            "pass": rss < RSS_MB,
        },
    ]


def _query_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for row in report["rows"]:
        query = row.get("queries", {}).get(TARGET_QUERY)
        if query and row["customers"] == QUERY_SIZE:
            bound = TARGET_MS[row.get("backend", "file")]
            found.append(
                {
                    "target": f"{row.get('backend', 'file')}: {TARGET_QUERY} at {QUERY_SIZE:,} < {bound:.0f} ms",
                    "workers": row["workers"],
                    "detail": f"{query['rest_p50_ms']:.1f} ms (p95 {query['rest_p95_ms']:.1f}; after a write {query['after_write_p50_ms']:.1f})",
                    "ratio": query["rest_p50_ms"] / bound,
                    "pass": query["rest_p50_ms"] < bound,
                }
            )
    return found


QUERY_SIZE = 100_000


def markdown(report: dict[str, Any]) -> str:
    minutes = report.get("duration_s", 0) / 60
    lines = [
        f"Run {report['date']} on {report['machine']} ({report.get('cores')} cores, shared: figures are noisy, compare within one run); "
        f"{report['seconds']:.0f} s per wrk operation, loopback; the whole run took {minutes:.1f} min.",
        "",
    ]
    if report.get("postgres"):
        lines += ["PostgreSQL (throwaway server, default settings): " + ", ".join(f"{k} {v}" for k, v in report["postgres"].items()), ""]
    lines += [
        "Floor (raw ASGI app, same uvicorn): " + ", ".join(f"{w} worker(s) {rps:,.0f} req/s" for w, rps in report["floor_rps"].items()),
        "",
        "Connexion's floor (one-operation AsyncApp, default middleware, same body): "
        + ", ".join(f"{w} worker(s) {rps:,.0f} req/s" for w, rps in report["connexion_floor_rps"].items()),
        "",
        "## Side by side",
        "",
        "Requests/s with wrk, 50 connections (≥: DELETE ran out of ids, a lower bound). Full list: median of "
        f"{report.get('list_requests', '?')} sequential GETs of the whole list; RSS while listing: peak of the sum of VmRSS over all the "
        "service's processes, sampled every 20 ms while they stream (in brackets: its workers alone; with 2 workers the supervisor "
        "and multiprocessing's resource tracker add about 70 MB, and each process counts the shared pages it maps). "
        "Start-up: process start to the first 200 of /health, the median of "
        f"{report.get('startups', 1)} starts.",
        "",
        "| store | N | workers | GET by id | GET by id, 10 conns | POST | PUT | DELETE | full list | MB/s | RSS while listing (workers) | start-up | /health |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(report["rows"], key=lambda r: (r.get("backend", "file"), r["customers"], r["workers"])):
        listing = row.get("list")
        listed = "- | - | -"
        if listing:
            rss = f"{listing['peak_rss_sum_mib'] * MIB:.0f} MB ({listing['peak_rss_workers_mib'] * MIB:.0f} MB)"
            listed = f"{listing['median_s']:.3f} s | {listing['mb_per_s']:.0f} | {rss}"
        ops = " | ".join(_rps(row, label) for label in ("GET by id", "GET by id, 10 conns", "POST", "PUT", "DELETE"))
        health = f"{row['health_ms']:.0f} ms" if "health_ms" in row else "-"
        lines.append(f"| {row.get('backend', 'file')} | {row['customers']:,} | {row['workers']} | {ops} | {listed} | {row['startup_s']:.2f} s | {health} |")
    return "\n".join([*lines, *_queries(report), *_targets_table(report), *_every_operation(report), *_per_run(report)]) + "\n"


def _queries(report: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Queries",
        "",
        "Milliseconds per request, client side, one at a time over a keep-alive connection (`bench/queries.py`): the median and p95 of "
        "30 at rest, and the median of 30 each right after a `PUT` of one customer. RSS: the service's processes before the first query "
        "and after the last.",
        "",
        "| store | N | workers | query | p50 | p95 | after a write | RSS before -> after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in sorted(report["rows"], key=lambda r: (r.get("backend", "file"), r["customers"], r["workers"])):
        rss = row.get("queries_rss_mib")
        for label, q in row.get("queries", {}).items():
            memory = f"{rss[0] * MIB:.0f} -> {rss[1] * MIB:.0f} MB" if rss else "-"
            lines.append(
                f"| {row.get('backend', 'file')} | {row['customers']:,} | {row['workers']} | {label} (`{q['path']}`) | "
                f"{q['rest_p50_ms']:.1f} | {q['rest_p95_ms']:.1f} | {q['after_write_p50_ms']:.1f} | {memory} |"
            )
    return lines


def _targets_table(report: dict[str, Any]) -> list[str]:
    if not report.get("targets"):
        return []
    lines = ["", "## Targets", "", "| target | workers | measured | ratio | result |", "|---|---|---|---|---|"]
    for t in report["targets"]:
        lines.append(f"| {t['target']} | {t['workers']} | {t['detail']} | {t['ratio']:.2f} | {'pass' if t['pass'] else 'FAIL'} |")
    return lines


def _every_operation(report: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Every operation",
        "",
        "CPU µs/request: CPU time (user + system) of the service's processes and of PostgreSQL's server over the run, divided by the requests wrk made.",
        "",
        "| store | workers | N | operation | req/s | ratio to floor | p50 ms | p99 ms | errors | service CPU µs/req | PostgreSQL CPU µs/req |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        for label, f in row["operations"].items():
            cpu = f.get("cpu_us_per_request", {})
            used = " | ".join(f"{cpu[name]:,.0f}" if name in cpu else "-" for name in ("service", "postgres"))
            figures = f"{_rps(row, label)} | {f['ratio_to_floor']:.3f} | {f['p50_ms']:.1f} | {f['p99_ms']:.1f} | {f['errors']} | {used}"
            lines.append(f"| {row.get('backend', 'file')} | {row['workers']} | {row['customers']:,} | {label} | {figures} |")
    return lines


def _per_run(report: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "| store | workers | N | seeding | start-up to first 200 (median; each) | peak RSS (one process) | data | CPU per full list: service, PostgreSQL |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        data = f"{row['file_mib']:.1f} MiB file" if "file_mib" in row else f"{row.get('table_mib', 0):.0f} MiB table"
        seeded = f"{row['seed_s']:.1f} s" if "seed_s" in row else "-"
        each = ", ".join(f"{s:.2f}" for s in row.get("startups_s", []))
        start, rss = f"{row['startup_s']:.2f} s ({each})", f"{row['peak_rss_mib']:.0f} MiB"
        cpu = row.get("list", {}).get("cpu_s_per_list", {})
        data += " | " + ", ".join(f"{cpu[name]:.2f} s" if name in cpu else "-" for name in ("service", "postgres"))
        lines.append(f"| {row.get('backend', 'file')} | {row['workers']} | {row['customers']:,} | {seeded} | {start} | {rss} | {data} |")
    return lines
