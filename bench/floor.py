"""The floor: a raw ASGI app serving one fixed customer, under the same uvicorn.

Every benchmark figure is also given as a ratio to this app's requests/s, measured in the
same run: the machine is shared and noisy, ratios from one run are what count.
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

CUSTOMER = (
    b'{"id":"00000000-0000-4000-8000-000000000005","name":"Customer 5","email":"customer5@example.com",'
    b'"phone":"+1-555-0005","address":"5 Benchmark Avenue, Springfield, IL 62701","company":"Company 5",'
    b'"status":"active","created_at":"2026-02-01T10:00:00.000000","updated_at":"2026-02-01T10:00:00.000000"}'
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(CUSTOMER)).encode())]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": CUSTOMER})
