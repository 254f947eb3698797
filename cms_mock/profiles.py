"""Handlers of the Customer Profile API (``/customers``); validation happened before them."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from cms_mock.runtime import changed_response, created_response, current, json_array_response, precondition, record_response


async def list_profiles() -> Response:
    return json_array_response(await current().store.list())


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
