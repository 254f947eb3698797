"""``GET /metrics``: the Prometheus figures of the service (``metrics``), served beside the API."""

from __future__ import annotations

import contextlib

from starlette.types import ASGIApp, Receive, Scope, Send

from cms_mock import metrics
from cms_mock.errors import StoreUnavailable

METRICS_PATH = "/metrics"


class MetricsPage:
    """``GET /metrics``: the figures of every worker (``metrics.render``), the record count read
    from the store as it is scraped."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != METRICS_PATH or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        with contextlib.suppress(StoreUnavailable):  # the other figures are worth having; the count keeps its last value
            metrics.RECORDS.labels(self.service).set(await scope["state"]["runtime"].store.count())
        body = metrics.render()
        headers = [(b"content-type", metrics.CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
