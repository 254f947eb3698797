"""The handlers of operations that are not a resource's: each answers its success from the spec's
examples (``openapi.examples``), the same every time; validation happened before them."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from cms_mock.handlers.records import Handler
from cms_mock.openapi.examples import answer


def handler(spec: dict[str, Any], operation: dict[str, Any]) -> Handler:
    """The handler of ``operation``: its answer, made once."""
    made = answer(spec, operation)

    async def answer_from_examples(**_params: Any) -> Response:
        return Response(content=made.body, status_code=made.status, media_type=made.media_type)

    return answer_from_examples
