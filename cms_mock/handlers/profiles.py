"""Handlers of the Customer Profile API (``/customers``); validation happened before them."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from cms_mock.handlers.runtime import changed_response, created_response, current, list_response, precondition, record_response


async def list_profiles(
    email: str | None = None,
    last_name: str | None = None,
    q: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> Response:
    return await list_response(email=email, last_name=last_name, q=q, sort=sort, limit=limit, offset=offset)


async def create_profile(body: dict[str, Any]) -> Response:
    runtime = current()
    return created_response(await runtime.store.create(runtime.pick("ProfileCreate", body)), "/customers")


async def get_profile(customer_id: int) -> Response:
    return record_response(await current().store.get(str(customer_id)))


async def update_profile(customer_id: int, body: dict[str, Any]) -> Response:
    runtime = current()
    return changed_response(await runtime.store.update(str(customer_id), runtime.pick("ProfilePatch", body), precondition()))


async def delete_profile(customer_id: int) -> Response:
    await current().store.delete(str(customer_id), precondition())
    return Response(status_code=204)
