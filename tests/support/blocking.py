"""What the ``blockbuster`` fixture allows on the event loop, and how it keeps what it saw.

The fixture (``tests/conftest.py``) fails a test whose app made a blocking call on its event
loop; these are the calls that are allowed there, and why each is cheap.
"""

from __future__ import annotations

import fcntl
import os
import traceback
from typing import ClassVar, NamedTuple

from blockbuster import BlockingError


class Allowed(NamedTuple):
    """A blocking call that may run on the event loop, and why it is cheap there."""

    function: str
    """As blockbuster names it (``os.stat``, ``io.BufferedReader.read``...), or ``EVERY`` watched function."""
    file: str
    caller: str
    """The function of ``file`` under which the call is allowed (anywhere below it on the stack)."""
    why: str


EVERY = "*"

ALLOWED_ON_THE_LOOP = (
    Allowed("os.stat", "cms_mock/stores/datafile.py", "signature", why="one stat of the data file: its inode, size and time, from the kernel's cache"),
    Allowed("os.stat", "cms_mock/stores/file/lock.py", "_lock", why="the lock file's identity, checked once the lock is taken without waiting"),
    Allowed("os.stat", "cms_mock/stores/file/health.py", "problem", why="the health check's look at the data directory: a stat"),
    Allowed("os.access", "cms_mock/stores/file/health.py", "problem", why="the health check's look at the data file: a permission check on a cached inode"),
    Allowed(
        "os.write", "cms_mock/state/local.py", "record", why="a line appended to this worker's journal: the page cache takes it, nothing waits for the disk"
    ),
    Allowed(
        "io.BufferedReader.read", "cms_mock/http/documents.py", "__init__", why="the favicon, a small file of the package, read once as the middleware is built"
    ),
    Allowed("os.stat", "/mimetypes.py", "init", why="the system's MIME type tables, looked for once per process (starlette's own tests allow it)"),
    Allowed("io.TextIOWrapper.write", "logging/__init__.py", "emit", why="a log line to the process's stream (in tests, the file pytest captures it in)"),
    Allowed("io.BufferedWriter.write", "logging/__init__.py", "emit", why="the same log line, as the text stream passes it to its buffer"),
    Allowed(
        EVERY,
        "cms_mock/app.py",
        "lifespan",
        why="the app's start and stop: no request is served meanwhile (a store may wait for another worker's lock as it opens)",
    ),
    Allowed(
        EVERY,
        "cms_mock/metrics.py",
        "render",
        why="GET /metrics: the process's figures read from /proc (kernel memory, not the disk); with several workers, small files",
    ),
    Allowed(
        EVERY, "asyncpg/connect_utils.py", "_parse_connect_dsn_and_args", why="asyncpg looks for a password file and client certificates as the pool connects"
    ),
)
"""Calls that block but are cheap and local. Anything else that blocks (waits on a lock, syncs,
reads or parses a whole file) runs off the loop."""


class BlockingSeen(BlockingError):
    """A ``BlockingError`` that is also kept: the app answers an unexpected exception with a 500
    and a failed commit with a 503, so a blocking call could hide behind an answer a test accepts."""

    seen: ClassVar[list[str]] = []

    def __init__(self, func: str) -> None:
        super().__init__(func)
        ours = [frame for frame in traceback.extract_stack() if f"{os.sep}cms_mock{os.sep}" in frame.filename]
        self.seen.append(f"{func} in {ours[-1].name} ({ours[-1].filename}:{ours[-1].lineno})" if ours else func)


def flock_returns_at_once(_fd: object, operation: int, *_: object) -> bool:
    """Letting go of a ``flock``, or taking it with ``LOCK_NB``, never waits; taking it otherwise
    waits for every other holder."""
    return operation == fcntl.LOCK_UN or bool(operation & fcntl.LOCK_NB)
