"""Failures on purpose, from the contract: only a status an operation declares, answered in the
body its spec declares for it (``POST /__admin/faults``, or ``Prefer: code=NNN`` per request).

An injected answer is an error like any other: it goes through ``error_responses`` in the
service's dialect (``{"detail": ...}`` or ``{"error": ...}``, the CMS's 422 as its list of field
problems), its message says it was injected, so nobody mistakes it for the store's, and the
headers the spec declares for it are sent (``WWW-Authenticate`` with a 401). A status whose
declared body is not an error message (the health check's 503, ``Unhealthy``) answers the
spec's example of it, its ``reason`` saying it was injected.
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cms_mock import metrics
from cms_mock.errors import ApiError, FieldError, InjectedError, InvalidBody, StoreUnavailable
from cms_mock.http.gate import reached
from cms_mock.openapi.routes import resolved

logger = logging.getLogger(__name__)

_PREFER_CODE = re.compile(r"(?:^|[,;\s])code\s*=\s*\"?([1-5][0-9]{2})\"?(?=$|[,;\s])", re.IGNORECASE)

_HEADER_VALUES = {"WWW-Authenticate": 'ApiKey header="X-API-Key"'}

_ERRORS = [status.value for status in http.HTTPStatus if status.value >= 400]
"""The error statuses an operation with a ``default`` response may be made to answer."""

_BODY_HEADERS = (b"content-length", b"transfer-encoding")
"""A request without either has no body to read."""


class Faults:
    """Each operation of a spec with the error statuses it declares, and the answers for them."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.declared: dict[str, dict[int, dict[str, Any]]] = {}
        self._bodiless: set[str] = set()
        """Operations without a request body: their 422s are about the query."""
        for item in spec["paths"].values():
            for operation in item.values():
                if isinstance(operation, dict) and "operationId" in operation:
                    responses = operation.get("responses", {})
                    declared = {int(status): resolved(spec, response) for status, response in responses.items() if str(status).isdigit() and int(status) >= 400}
                    if "default" in responses:  # any error status, in the default's body
                        declared = {status: resolved(spec, responses["default"]) for status in _ERRORS} | declared
                    self.declared[operation["operationId"]] = declared
                    if "requestBody" not in operation:
                        self._bodiless.add(operation["operationId"])

    def problems(self, rule: dict[str, Any]) -> list[FieldError]:
        """What is wrong with a rule beyond its schema: an operation the spec does not have, a
        status that operation does not declare, neither a status nor a delay."""
        operation = rule["operationId"]
        if operation not in self.declared:
            known = ", ".join(self.declared)
            return [FieldError(("body", "operationId"), f"is not an operation of this service; its operations are {known}", "value_error.operation")]
        problems = []
        status = rule.get("status")
        if status is not None and status not in self.declared[operation]:
            listed = ", ".join(map(str, self.declared[operation]))
            problems.append(FieldError(("body", "status"), f"is not an error status {operation} declares; it declares {listed}", "value_error.status"))
        if status is None and not rule.get("delay_ms"):
            problems.append(FieldError(("body",), "a rule needs a status, a delay_ms, or both", "value_error.missing"))
        return problems

    def error(self, operation: str, status: int, why: str, headers: dict[str, str] | None = None) -> ApiError:
        """The answer for an injected ``status``: the error its operation declares for it."""
        phrase = http.HTTPStatus(status).phrase
        message = f"Injected fault: {status} {phrase} ({why})"
        declared_headers = self.declared[operation][status].get("headers", {})
        headers = {**{name: _HEADER_VALUES[name] for name in declared_headers if name in _HEADER_VALUES}, **(headers or {})}
        if status == 422:
            invalid = InvalidBody([FieldError(("query" if operation in self._bodiless else "body",), message, "value_error.injected")])
            invalid.headers = headers
            return invalid
        content = self.declared[operation][status].get("content", {}).get("application/json", {})
        if content.get("schema", {}).get("$ref", "").endswith("/ErrorMessage") or "example" not in content:
            return ApiError(message, status=status, headers=headers)  # written in the service's dialect
        return InjectedError({**content["example"], "reason": message}, status=status, headers=headers)

    def preferred(self, operation: str, prefer: str | None) -> ApiError | None:
        """``Prefer: code=NNN`` (Prism's convention): the error for NNN when ``operation``
        declares it, with ``Preference-Applied``; an undeclared code is ignored."""
        match = _PREFER_CODE.search(prefer or "")
        if match is None or int(match.group(1)) not in self.declared.get(operation, {}):
            return None
        code = match.group(1)
        return self.error(operation, int(code), "Prefer: code", {"Preference-Applied": f"code={code}"})


class FaultInjector:
    """Answers the fault a request gets, after its delay: ``Prefer: code=NNN``, and with
    ``rules`` (the control plane is on) the first fault rule of the service's state that hits.

    Sits after the API key guard and the body limit: a request they refuse is refused, and uses
    up no rule; and inside connexion's exception handling, so its errors have the contract's shape.
    A request answered by ``Prefer`` is not counted by the rules. When a fault may answer, the
    request's body is read first, through the body limit (a chunked body over it is refused
    before any rule is used), so the journal has what the client sent whatever answered it;
    the operation, when no fault answers, is handed the body as read.
    """

    def __init__(self, app: ASGIApp, service: str, faults: Faults, rules: bool) -> None:
        self.app = app
        self.service = service
        self.faults = faults
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        operation = reached(scope) if scope["type"] == "http" else None
        if operation not in self.faults.declared:
            await self.app(scope, receive, send)
            return
        prefer = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"prefer"), None)
        fault = self.faults.preferred(operation, prefer)
        if fault is None and not self.rules:
            await self.app(scope, receive, send)
            return
        if any(name in _BODY_HEADERS for name, _ in scope["headers"]):
            receive = await _read_ahead(receive)
        if fault is None:
            fault = await self._ruled(scope, operation)
        if fault is not None:
            metrics.FAULTS.labels(self.service, operation, str(fault.status)).inc()
            raise fault
        await self.app(scope, receive, send)

    async def _ruled(self, scope: Scope, operation: str) -> ApiError | None:
        """The fault of the first rule that hits, after the rule's delay."""
        rule = await self._rule(scope, operation)
        if rule is None:
            return None
        if rule.get("delay_ms"):
            await asyncio.sleep(rule["delay_ms"] / 1000)
        return self.faults.error(operation, rule["status"], f"fault rule {rule['id']}") if rule.get("status") else None

    @staticmethod
    async def _rule(scope: Scope, operation: str) -> dict[str, Any] | None:
        try:
            rule: dict[str, Any] | None = await scope["state"]["runtime"].state.take_fault(operation)
        except StoreUnavailable as exc:  # the request itself will find out whether the store works
            logger.warning("fault rules could not be read: %s", exc.reason)
            return None
        return rule


async def _read_ahead(receive: Receive) -> Receive:
    """Reads a request's body to its end, and gives what reads it next the body as one message,
    then ``receive`` itself. A client that leaves first gets no answer (the request gate lets it
    go, as it does when the operation reads the body)."""
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    pending = [{"type": "http.request", "body": b"".join(parts), "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay
