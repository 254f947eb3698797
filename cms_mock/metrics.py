"""The figures ``GET /metrics`` shows, in Prometheus' text format, with its client library.

With ``cms-mock --workers N`` the supervisor names a directory in ``PROMETHEUS_MULTIPROC_DIR``
before it starts the workers; the library then keeps each worker's figures in memory-mapped
files there, and whichever worker is scraped adds up all of them (the library's multiprocess
mode; the library then has no ``process_*`` figures). A single process keeps them in its own
memory, and a ``PROMETHEUS_MULTIPROC_DIR`` it inherits from elsewhere is dropped before the
library reads it (the library reads it once, when imported).
"""

from __future__ import annotations

import os

from cms_mock.workers import SUPERVISOR

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"
if SUPERVISOR not in os.environ:  # not a worker of ours: a directory someone else named is not ours to write in
    os.environ.pop(MULTIPROCESS, None)

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess  # noqa: E402 (the library reads the environment when imported)

CONTENT_TYPE = CONTENT_TYPE_LATEST

REQUESTS = Counter(
    "cms_mock_http_requests",
    "Requests answered, by service, operation (empty: none matched), method and status.",
    ["service", "operation", "method", "status"],
)
DURATION = Histogram(
    "cms_mock_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by service and operation.",
    ["service", "operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECORDS = Gauge("cms_mock_records", "Records in the store, counted when scraped.", ["service"], multiprocess_mode="mostrecent")
COMMIT_DURATION = Histogram(
    "cms_mock_commit_duration_seconds",
    "JSON file store: time to make one group of changes durable (write, fsync, rename), by data file.",
    ["file"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
COMMIT_GROUP = Histogram(
    "cms_mock_commit_group_size",
    "JSON file store: changes made durable by one commit, by data file.",
    ["file"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
FAULTS = Counter("cms_mock_faults_injected", "Faults injected (rules and Prefer: code), by service, operation and status.", ["service", "operation", "status"])


def render() -> bytes:
    """Every figure of every process of this server."""
    if MULTIPROCESS in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call, unused-ignore]  # the library leaves it untyped
        return generate_latest(registry)
    return generate_latest(REGISTRY)
