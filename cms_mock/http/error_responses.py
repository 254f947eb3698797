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
from cms_mock.openapi import error_bodies
from cms_mock.openapi.routes import SpecRoutes

logger = logging.getLogger(__name__)


Rendered = tuple[int, Any, str]
"""An error's status, body and media type."""


class Dialect(Protocol):
    """How one contract writes an error body (for the operation ``method`` ``path`` names)."""

    def render(self, error: ApiError, method: str, path: str) -> Rendered: ...


class DetailDialect:
    """FastAPI's bodies: ``{"detail": "message"}``, or the list of field errors for a 422."""

    def render(self, error: ApiError, method: str, path: str) -> Rendered:
        if isinstance(error, InvalidBody):
            return error.status, {"detail": [e.as_dict() for e in error.errors]}, _JSON
        return error.status, {"detail": error.message}, _JSON


class ErrorDialect:
    """The profile service's bodies (``errors: error``): ``{"error": "message"}``; a missing body
    or malformed JSON is a 400."""

    def render(self, error: ApiError, method: str, path: str) -> Rendered:
        if isinstance(error, MissingBody):
            return 400, {"error": error.words}, _JSON
        if isinstance(error, MalformedBody):
            return 400, {"error": f"Malformed JSON body: {error.errors[0].msg}"}, _JSON
        if isinstance(error, InvalidBody):
            return error.status, {"error": f"Validation failed: {error.message}"}, _JSON
        return error.status, {"error": error.message}, _JSON


class SpecDialect:
    """A user's spec's bodies: the one its operation declares for the status, filled to say what
    happened (``openapi.error_bodies``), else problem details. A request that breaks the rules
    gets the 400 its operation declares when it declares no 422."""

    def __init__(self, spec: dict[str, Any], routes: SpecRoutes, plain_under: str) -> None:
        self.spec = spec
        self.routes = routes
        self.plain_under = plain_under
        """Where problem details go out as ``application/json``: the control plane's declared type."""

    def render(self, error: ApiError, method: str, path: str) -> Rendered:
        if path.startswith(self.plain_under):
            return error.status, error_bodies.problem(error.status, error.message), _JSON
        found = self.routes.find(self.routes.canonical(path))
        operation = found.operation(method) if found else None
        status = error.status
        if isinstance(error, InvalidBody) and operation is not None:
            status = error_bodies.refusal({str(code) for code in operation.get("responses", {})})
        message = error.words if isinstance(error, MissingBody) else error.message
        body = error_bodies.declared_body(self.spec, operation, status)
        if body is None:
            return status, error_bodies.problem(status, message), error_bodies.PROBLEM
        schema, media_type = body
        return status, error_bodies.fill(self.spec, schema, status, message), media_type


_JSON = "application/json"


def _response(dialect: Dialect, error: ApiError, request: ConnexionRequest) -> ConnexionResponse:
    if isinstance(error, InjectedError):
        status, body, media_type = error.status, error.body, _JSON
    else:
        status, body, media_type = dialect.render(error, request.method, request.url.path)
    return ConnexionResponse(status_code=status, body=orjson.dumps(body), content_type=media_type, headers=error.headers)


def register(app: AsyncApp, dialect: Dialect) -> None:
    """Install the handlers that render every error in ``dialect`` (async: no thread hop)."""

    async def api_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        assert isinstance(exc, ApiError)
        return _response(dialect, exc, request)

    async def http_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if isinstance(exc, ProblemException) and exc.status_code == 400:  # a path parameter failed its schema
            message = f"Invalid parameter: {str(exc.detail).splitlines()[0]}"  # jsonschema's first line says how
        elif isinstance(exc, ProblemException) and exc.status_code == 415:
            message = f"{exc.title}: {exc.detail}"
        else:
            message = str(exc.detail)
        return _response(dialect, ApiError(message, status=exc.status_code, headers=headers), request)

    async def unexpected(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        logger.error("unhandled error on %s %s", request.method, printable(request.url.path), exc_info=exc)
        return _response(dialect, ApiError("Internal Server Error"), request)

    app.add_error_handler(ApiError, api_error)
    app.add_error_handler(HTTPException, http_error)
    app.add_error_handler(ProblemException, http_error)
    app.add_error_handler(Exception, unexpected)
