"""The one place that turns errors into responses, in the shape each contract promises.

Everything that can go wrong ends here: our own ``ApiError``s (the request gate's 404, 405
and 400 among them), connexion's problems (415, a path parameter outside its schema),
starlette's HTTP errors and anything unexpected (500, logged, never a traceback in the body).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import orjson
from connexion import AsyncApp
from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from cms_mock.errors import ApiError, InjectedError, InvalidBody, MalformedBody, MissingBody
from cms_mock.logs import printable

logger = logging.getLogger(__name__)


class Dialect(Protocol):
    """How one contract writes an error body."""

    def render(self, error: ApiError) -> tuple[int, dict[str, Any]]: ...


class DetailDialect:
    """FastAPI's bodies: ``{"detail": "message"}``, or the list of field errors for a 422."""

    def render(self, error: ApiError) -> tuple[int, dict[str, Any]]:
        if isinstance(error, InvalidBody):
            return error.status, {"detail": [e.as_dict() for e in error.errors]}
        return error.status, {"detail": error.message}


class ErrorDialect:
    """The profile service's bodies: ``{"error": "message"}``; a missing body or malformed JSON is a 400."""

    def render(self, error: ApiError) -> tuple[int, dict[str, Any]]:
        if isinstance(error, MissingBody):
            return 400, {"error": error.words}
        if isinstance(error, MalformedBody):
            return 400, {"error": f"Malformed JSON body: {error.errors[0].msg}"}
        if isinstance(error, InvalidBody):
            return error.status, {"error": f"Validation failed: {error.message}"}
        return error.status, {"error": error.message}


def _response(dialect: Dialect, error: ApiError) -> ConnexionResponse:
    status, body = (error.status, error.body) if isinstance(error, InjectedError) else dialect.render(error)
    return ConnexionResponse(status_code=status, body=orjson.dumps(body), content_type="application/json", headers=error.headers)


def register(app: AsyncApp, dialect: Dialect) -> None:
    """Install the handlers that render every error in ``dialect`` (async: no thread hop)."""

    async def api_error(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        assert isinstance(exc, ApiError)
        return _response(dialect, exc)

    async def http_error(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if isinstance(exc, ProblemException) and exc.status_code == 400:  # a path parameter failed its schema
            message = f"Invalid parameter: {str(exc.detail).splitlines()[0]}"  # jsonschema's first line says how
        elif isinstance(exc, ProblemException) and exc.status_code == 415:
            message = f"{exc.title}: {exc.detail}"
        else:
            message = str(exc.detail)
        return _response(dialect, ApiError(message, status=exc.status_code, headers=headers))

    async def unexpected(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        logger.error("unhandled error on %s %s", request.method, printable(request.url.path), exc_info=exc)
        return _response(dialect, ApiError("Internal Server Error"))

    app.add_error_handler(ApiError, api_error)
    app.add_error_handler(HTTPException, http_error)
    app.add_error_handler(ProblemException, http_error)
    app.add_error_handler(Exception, unexpected)
