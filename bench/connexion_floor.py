"""Connexion's own floor: a one-operation connexion ``AsyncApp`` with its default middleware,
returning the same fixed customer as ``floor.py``. The gap between the two is connexion's
per-request cost; the gap between this and the service is ours.
"""

from __future__ import annotations

from connexion import AsyncApp
from starlette.responses import Response

from bench.floor import CUSTOMER

SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "connexion floor", "version": "1"},
    "paths": {
        "/api/customers/{customer_id}": {
            "get": {
                "operationId": "bench.connexion_floor.get_customer",
                "parameters": [{"name": "customer_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "a customer", "content": {"application/json": {"schema": {"type": "object"}}}}},
            }
        }
    },
}


async def get_customer(customer_id: str) -> Response:
    return Response(CUSTOMER, media_type="application/json")


app = AsyncApp(__name__)
app.add_api(SPEC)
