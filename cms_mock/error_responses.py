"""The one place that turns errors into responses, in the shape each contract promises.

Everything that can go wrong ends here: our own ``ApiError``s, connexion's problems (415, a
path parameter of the wrong type), starlette's routing errors (404, 405) and anything
unexpected (500, logged, never a traceback in the body).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol

import orjson
from connexion import AsyncApp
from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from cms_mock.errors import ApiError, InvalidBody, InvalidParameter, MalformedBody

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
    """The profile service's bodies: ``{"error": "message"}``; malformed JSON is a 400."""

    def render(self, error: ApiError) -> tuple[int, dict[str, Any]]:
        if isinstance(error, MalformedBody):
            return 400, {"error": f"Malformed JSON body: {error.errors[0].msg}"}
        if isinstance(error, InvalidBody):
            return error.status, {"error": f"Validation failed: {error.message}"}
        return error.status, {"error": error.message}


class SpecRoutes:
    """The spec's paths, for what starlette's router cannot tell from its own routes.

    An ``integer`` path parameter is matched with a regex, so ``/customers/abc`` matches no
    route at all: that is a 400 for the parameter, not a 404. And a 405's ``Allow`` header
    must list every method the spec declares for the path, not one route's.
    """

    _METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

    def __init__(self, spec: dict[str, Any]) -> None:
        self._routes = []
        for template, item in spec.get("paths", {}).items():
            regex = re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(template))
            typed = {p["name"]: p["schema"]["type"] for p in item.get("parameters", []) if p.get("in") == "path" and p["schema"].get("type") != "string"}
            methods = [m.upper() for m in self._METHODS if m in item]
            if "GET" in methods:
                methods.append("HEAD")
            self._routes.append((re.compile(f"^{regex}$"), typed, methods))

    def bad_parameter(self, path: str) -> InvalidParameter | None:
        for regex, typed, _ in self._routes:
            match = regex.match(path)
            if match and typed:
                name, type_ = next(iter(typed.items()))
                return InvalidParameter(f"Invalid {name}: {match.group(name)!r} is not a valid {type_}")
        return None

    def allowed(self, path: str) -> str | None:
        for regex, _, methods in self._routes:
            if regex.match(path):
                return ", ".join(methods)
        return None


def _response(dialect: Dialect, error: ApiError) -> ConnexionResponse:
    status, body = dialect.render(error)
    return ConnexionResponse(status_code=status, body=orjson.dumps(body), content_type="application/json", headers=error.headers)


def register(app: AsyncApp, dialect: Dialect, spec: dict[str, Any]) -> None:
    """Install the handlers that render every error in ``dialect`` (async: no thread hop)."""
    routes = SpecRoutes(spec)

    async def api_error(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        assert isinstance(exc, ApiError)
        return _response(dialect, exc)

    async def http_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            mismatch = routes.bad_parameter(request.url.path)
            if mismatch is not None:
                return _response(dialect, mismatch)
        if exc.status_code == 405:
            headers["Allow"] = routes.allowed(request.url.path) or headers.get("Allow", "")
        if isinstance(exc, ProblemException):
            message = f"{exc.title}: {exc.detail}" if exc.status_code == 415 else str(exc.detail)
            if exc.status_code == 400:  # a path parameter failed its schema; jsonschema's first line says how
                message = f"Invalid parameter: {str(exc.detail).splitlines()[0]}"
        else:
            message = str(exc.detail)
        return _response(dialect, ApiError(message, status=exc.status_code, headers=headers))

    async def unexpected(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _response(dialect, ApiError("Internal Server Error"))

    app.add_error_handler(ApiError, api_error)
    app.add_error_handler(HTTPException, http_error)
    app.add_error_handler(ProblemException, http_error)
    app.add_error_handler(Exception, unexpected)
