"""Handlers of the CMS customer API (``/api/customers/``); validation happened before them."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from cms_mock.handlers.runtime import changed_response, created_response, current, list_response, precondition, record_response


async def list_customers(
    status: str | None = None,
    company: str | None = None,
    email: str | None = None,
    q: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> Response:
    return await list_response(status=status, company=company, email=email, q=q, sort=sort, limit=limit, offset=offset)


async def create_customer(body: dict[str, Any]) -> Response:
    runtime = current()
    return created_response(await runtime.store.create(runtime.pick("CustomerCreate", body)), "/api/customers")


async def get_customer(customer_id: str) -> Response:
    return record_response(await current().store.get(customer_id))


async def update_customer(customer_id: str, body: dict[str, Any]) -> Response:
    runtime = current()
    return changed_response(await runtime.store.update(customer_id, runtime.pick("CustomerUpdate", body), precondition()))


async def delete_customer(customer_id: str) -> Response:
    await current().store.delete(customer_id, precondition())
    return Response(status_code=204)
