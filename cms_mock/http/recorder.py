"""What the service sees of its traffic: each request journaled and counted (coverage, metrics).

``Recorder`` sits outside connexion's exception handling, beside the access log, so it sees
every answer as it was sent, errors and injected faults included. An entry is recorded before
the last part of its answer is sent: a client that has its answer finds its request in the
journal. Recording never changes an answer: whatever goes wrong with it is logged, and the
answer is sent whole. What an entry keeps, and its bounds, is ``journal_entry``'s.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cms_mock import metrics
from cms_mock.errors import StoreUnavailable
from cms_mock.http.gate import reached
from cms_mock.http.journal_entry import Capture
from cms_mock.openapi.routes import METHODS
from cms_mock.state import Entry

if TYPE_CHECKING:  # imported for its types only: ``metrics`` must be imported before the library
    from prometheus_client import Counter, Histogram

logger = logging.getLogger(__name__)

_METHODS = frozenset(method.upper() for method in METHODS)


class Recorder:
    """Journals every request to the service's own paths (not those under ``skip``: the control
    plane, the metrics page) into its ``ServiceState``, counts it for coverage there, and in the metrics.

    ``coverage``: whether to record into the state at all (the control plane that reads it is
    on); ``journal``: whether entries are kept there (else only the operation and status are
    counted, and no body or header is captured); ``metrics``: whether to count in the metrics.
    A failure to record (a database down, anything else) is logged; the answer is sent as it is.
    """

    def __init__(self, app: ASGIApp, service: str, skip: tuple[str, ...], coverage: bool, journal: bool, metrics: bool) -> None:
        self.app = app
        self.service = service
        self.skip = skip
        self.coverage = coverage
        self.journal = coverage and journal
        self.metrics = metrics
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._skipped(scope["path"]):
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(self, Capture(scope, messages=self.journal), receive, send)
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except BaseException:
            exchange.capture.failed()
            raise
        finally:
            await exchange.end()  # when the client left, or the app failed, before the answer ended

    def _skipped(self, path: str) -> bool:
        return any(path == skip or path.startswith(skip + "/") for skip in self.skip)

    async def record(self, capture: Capture) -> None:
        """The request in the metrics, and in the service's state; never raises."""
        try:
            operation, elapsed = reached(capture.scope), capture.elapsed()
            if self.metrics:
                requests, duration = self._labelled(operation or "", capture.scope["method"], capture.status)
                requests.inc()
                duration.observe(elapsed)
            if self.coverage:
                entry: Entry = capture.entry(operation, elapsed) if self.journal else {"operationId": operation, "status": capture.status}
                await capture.scope["state"]["runtime"].state.record(entry)
        except (StoreUnavailable, OSError) as exc:
            logger.warning("a request could not be journaled: %s", getattr(exc, "reason", exc))
        except Exception:  # recording must never break an answer: it is sent whole
            logger.exception("a request could not be recorded")

    def _labelled(self, operation: str, method: str, status: int) -> tuple[Counter, Histogram]:
        """The request counter and duration histogram of these labels, looked up once (``labels``
        takes a lock and builds a key each time). A method the spec does not know is counted as
        ``other``: what clients send must not make the series, or this cache, grow without bound."""
        method = method if method in _METHODS else "other"
        key = (operation, method, status)
        series = self._series.get(key)
        if series is None:
            series = (metrics.REQUESTS.labels(self.service, operation, method, str(status)), metrics.DURATION.labels(self.service, operation))
            self._series[key] = series
        return series


class _Exchange:
    """One request on its way through the recorder: what it reads and what answers it pass by
    its ``capture``, and it is recorded once, before the last part of its answer is sent, or
    when it ends without one."""

    def __init__(self, recorder: Recorder, capture: Capture, receive: Receive, send: Send) -> None:
        self.capture = capture
        self._recorder = recorder
        self._receive, self._send = receive, send
        self._recorded = False

    async def receive(self) -> Message:
        message = await self._receive()
        self.capture.received(message)
        return message

    async def send(self, message: Message) -> None:
        if self.capture.sent(message):
            await self.end()
        await self._send(message)

    async def end(self) -> None:
        """Records the request, unless it was."""
        if not self._recorded:
            self._recorded = True
            await self._recorder.record(self.capture)
