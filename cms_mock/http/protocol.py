"""uvicorn's HTTP protocol with the limits a server facing hostile clients needs.

uvicorn closes an idle keep-alive connection only after a first response, reads a request head
of any size, and accepts every connection: a client that connects and sends nothing (or a byte
a second) holds a file descriptor forever, enough of them starve the server, and a few huge
header values take more memory than their own size. Here each connection must complete its
request head within ``head_timeout`` seconds (408, then closed), a head over ``max_head_bytes``
is refused with 431 before it is read whole, and connections beyond ``max_connections`` are
closed as soon as they are accepted, so those within the cap keep being served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

_END_OF_HEAD = b"\r\n\r\n"
_LINGER = 2.0  # seconds a refused connection is still read (and dropped) before it is closed


def _refusal(status: bytes, reason: bytes) -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: "
        + str(len(reason)).encode()
        + b"\r\n\r\n"
        + reason
    )


class _Refusals:
    """Counts refused connections and says so at most every 10 s: a flood must not flood the log."""

    def __init__(self) -> None:
        self.count = 0
        self.said = -10.0

    def note(self, cap: int) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.said >= 10:
            logger.warning("%d connections are open, the most allowed (MAX_CONNECTIONS): refused %d since the last report", cap, self.count)
            self.count, self.said = 0, now


_refused = _Refusals()


class GuardedProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with a deadline for each request head, a size limit on it, and a
    connection cap. uvicorn takes it as ``http="cms_mock.http.protocol:GuardedProtocol"`` (a name, so
    worker processes import it); ``limit`` sets its limits in each process."""

    head_timeout: float = 10.0
    max_head_bytes: int = 64 * 1024
    max_connections: int = 2048

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_seen = 0
        self._head_tail = b""
        self._in_head = True
        self._refused = False
        self._message_done = False
        self._head_after_message = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.abort()
            _refused.note(self.max_connections)
            return
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering after a refusal: what the client still sends is dropped unread
        if self._in_head:
            window = self._head_tail + data
            end = window.find(_END_OF_HEAD)
            size = self._head_seen + (end - len(self._head_tail) + len(_END_OF_HEAD) if end >= 0 else len(data))
            if size > self.max_head_bytes:
                self._refuse(b"431 Request Header Fields Too Large", f"The request head is larger than {self.max_head_bytes} bytes.".encode())
                return
            self._head_seen, self._head_tail = (0, b"") if end >= 0 else (size, window[-3:])
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._message_done = False
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._message_done = True
        super().on_message_complete()
        if self._head_after_message:
            self._await_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing() or self.pipeline:
            return
        if self._message_done:
            self._await_head()  # the next request's head has the same deadline, idle time included
        else:  # answered before its body was read (a 413): the rest of the body is no head
            self._head_after_message = True

    def _await_head(self) -> None:
        self._in_head, self._head_seen, self._head_tail, self._head_after_message = True, 0, b"", False
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            if self._head_seen or self._head_tail:  # it started a request: say why it ends
                self._refuse(b"408 Request Timeout", f"No complete request head within {self.head_timeout:g} seconds.".encode())
            else:
                self.transport.close()

    def _refuse(self, status: bytes, reason: bytes) -> None:
        """Answer, then linger: closing at once while the client still sends would make the
        kernel reset the connection, and a reset can destroy the answer before it is read."""
        self._cancel_head_timer()
        self._in_head, self._refused = False, True
        self.transport.write(_refusal(status, reason))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._head_timer = self.loop.call_later(_LINGER, self.transport.close)


NAME = "cms_mock.http.protocol:GuardedProtocol"


def limit(head_timeout: float, max_head_bytes: int, max_connections: int) -> None:
    """Set this process's limits. The connection cap stays under the file descriptor limit
    (raised to its hard maximum first), so the cap, not ``accept()`` failing, refuses the excess."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    usable = max(soft - 64, 1)  # the data file, its lock and temp files, logs, the listening socket
    if max_connections > usable:
        logger.warning("MAX_CONNECTIONS %d is over what %d file descriptors allow: using %d", max_connections, soft, usable)
        max_connections = usable
    GuardedProtocol.head_timeout, GuardedProtocol.max_head_bytes, GuardedProtocol.max_connections = head_timeout, max_head_bytes, max_connections
