"""The handlers of every resource's operations, made for each operation from what the spec
declares (``openapi.resources``); validation happened before them."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from connexion.decorators.parameter import sanitized
from starlette.responses import Response

from cms_mock.handlers.runtime import changed_response, created_response, current, list_response, precondition, record_response
from cms_mock.openapi.resources import Resource, Role

Handler = Callable[..., Awaitable[Response]]


def taking(function: Handler, names: list[str]) -> Handler:
    """``function`` as connexion should see it: taking exactly the declared parameters ``names``
    (and ``body``), so it passes those and no other. A handler that showed its ``**params``
    would be handed every query parameter a client sends, each undeclared one logged by
    connexion as an error of the spec's."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    function.__signature__ = inspect.Signature([inspect.Parameter(sanitized(name), keyword, default=None) for name in dict.fromkeys(names)])  # type: ignore[attr-defined]
    return function


def handler(resource: Resource, role: Role, base: str) -> Handler:
    """The handler of ``role`` on ``resource``, served under ``base``. It takes what connexion
    passes (``**params``: the declared query parameters, the path's id, ``body``) and answers
    from the app's store."""
    key = sanitized(resource.id_parameter)  # the name connexion passes the id under

    async def list_records(**params: Any) -> Response:
        return await list_response(**params)

    async def create_record(body: dict[str, Any], **_params: Any) -> Response:
        runtime = current()
        record = await runtime.store.create(runtime.pick(resource.bodies["create"], body))
        return created_response(record, base + resource.collection, resource.created)

    async def read_record(**params: Any) -> Response:
        return record_response(await current().store.get(str(params[key])))

    async def update_record(body: dict[str, Any], **params: Any) -> Response:
        runtime = current()
        return changed_response(await runtime.store.update(str(params[key]), runtime.pick(resource.bodies["update"], body), precondition()))

    async def delete_record(**params: Any) -> Response:
        await current().store.delete(str(params[key]), precondition())
        return Response(status_code=204)

    handlers: dict[Role, Handler] = {
        "list": list_records,
        "create": create_record,
        "read": read_record,
        "update": update_record,
        "delete": delete_record,
    }
    return handlers[role]
