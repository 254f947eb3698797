"""The app factory: settings in, a connexion ``AsyncApp`` bound to one service's spec out.

No app is built at import time; ``uvicorn cms_mock.app:app`` gets one built from the
environment on first access (module ``__getattr__``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import logging
import os
import re
from collections.abc import AsyncIterator
from typing import Any

from connexion import AsyncApp
from connexion.middleware import ConnexionMiddleware, MiddlewarePosition
from connexion.middleware.response_validation import ResponseValidationMiddleware
from connexion.middleware.security import SecurityMiddleware
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolution, Resolver
from starlette.middleware.cors import CORSMiddleware

from cms_mock.backends import make_state, make_store, where
from cms_mock.errors import StoreRefused
from cms_mock.handlers import admin, examples, records
from cms_mock.handlers.runtime import Runtime
from cms_mock.http import error_responses, protocol
from cms_mock.http.credentials import CredentialsGuard
from cms_mock.http.documents import DOCS, Documents
from cms_mock.http.error_responses import SpecDialect
from cms_mock.http.faults import FaultInjector, Faults
from cms_mock.http.gate import RequestGate
from cms_mock.http.metrics_page import METRICS_PATH, MetricsPage
from cms_mock.http.middleware import AccessLog, ApiKeyGuard, BodyLimit
from cms_mock.http.recorder import Recorder
from cms_mock.logs import configure_logging
from cms_mock.openapi import additions, versions
from cms_mock.openapi.patterns import check_patterns
from cms_mock.openapi.resources import Resource, answered_from_examples
from cms_mock.openapi.routes import SpecRoutes, base_path, prefixed, resolved
from cms_mock.openapi.validators import SPEC_VALIDATOR_MAP, VALIDATOR_MAP
from cms_mock.record_files import start_records
from cms_mock.services import load_spec, served
from cms_mock.settings import Settings
from cms_mock.workers import SUPERVISOR, tie_to_supervisor

logger = logging.getLogger(__name__)


class SnakeCaseResolver(Resolver):
    """Binds the client-friendly ``operationId`` ``getCustomer`` to ``<controller>.get_customer``."""

    def resolve_operation_id(self, operation: Any) -> str:
        module, _, name = super().resolve_operation_id(operation).rpartition(".")
        return f"{module}.{re.sub(r'(?<!^)(?=[A-Z])', '_', name).lower()}"


class ResourceResolver(SnakeCaseResolver):
    """Binds each operation of ``resource`` to the handler of what it does to the records, and
    each operation of no resource to its answer from the spec's examples; one that names its own
    controller (``x-openapi-router-controller``) to it."""

    def __init__(self, spec: dict[str, Any], resource: Resource, base: str) -> None:
        super().__init__()
        self.spec = spec
        self.resource = resource
        self.base = base
        self.from_examples = set(answered_from_examples(spec, [resource]))

    def resolve(self, operation: Any) -> Resolution:
        role = self.resource.roles.get(operation.operation_id)
        if role is not None:
            function = records.handler(self.resource, role, self.base)
        elif (operation.path, operation.method) in self.from_examples:
            function = examples.handler(self.spec, self.spec["paths"][operation.path][operation.method])
        else:
            return super().resolve(operation)
        return Resolution(
            records.taking(function, self._declared(operation.path, operation.method)), operation.operation_id or f"{operation.method} {operation.path}"
        )

    def _declared(self, path: str, method: str) -> list[str]:
        """The names of the query and path parameters the operation declares, and ``body`` if it takes one."""
        item = self.spec["paths"][path]
        written = [resolved(self.spec, parameter) for parameter in [*item.get("parameters", []), *item[method].get("parameters", [])]]
        return [parameter["name"] for parameter in written if parameter.get("in") in ("query", "path")] + (["body"] if "requestBody" in item[method] else [])


def create_app(settings: Settings) -> AsyncApp:
    """Build the app for ``settings.service``; its store opens when the app starts."""
    service = served(settings)
    spec = service.served_spec()
    base = base_path(spec)
    check_patterns(spec, worded=service.built_in)
    start = start_records(service, settings.fixtures)
    faults = Faults(spec)
    view = versions.for_connexion(spec)  # what connexion binds operations and parameters from
    control = admin.admin_spec(load_spec(admin.SPEC_FILE), service, view) if settings.admin_api else None
    if control is not None:
        check_patterns(control, worded=service.built_in)
    for notice in settings.notices:
        logger.warning("%s", notice)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[dict[str, Any]]:
        store = make_store(settings, service)
        try:
            await store.open()
        except StoreRefused as exc:
            logger.critical("refusing to start: %s", exc)
            raise
        state = make_state(settings, service, store, list(faults.declared))
        await state.open()
        runtime = Runtime(spec, store, service.rules, start, state, faults, service.collection, additions.count_field(spec))
        logger.info("%s serving the records in %s", runtime.title, where(settings, service))
        try:
            yield {"runtime": runtime}
        finally:
            await state.close()
            await store.close()

    # Each connexion middleware routes the request again: keep only those that do work here.
    # Security is ApiKeyGuard's (the spec's key is optional unless API_KEY is set); responses
    # are validated only in debug mode, and the tests run in it.
    unused = {SecurityMiddleware} if settings.debug else {SecurityMiddleware, ResponseValidationMiddleware}
    app = AsyncApp(
        __name__,
        lifespan=lifespan,
        middlewares=[m for m in ConnexionMiddleware.default_middlewares if m not in unused],
        # Connexion serves only the Swagger UI's assets; Documents serves the spec and the page.
        swagger_ui_options=SwaggerUIOptions(swagger_ui_path=DOCS, serve_spec=False),
    )
    app.add_api(
        copy.deepcopy(view),  # connexion resolves $refs in place; keep ours as written
        resolver=ResourceResolver(spec, service.resource, base),
        validator_map=VALIDATOR_MAP if service.built_in else SPEC_VALIDATOR_MAP,
        validate_responses=settings.debug,
        pythonic_params=False,
    )
    served_paths = prefixed(spec, base)  # the service's own paths, as requests name them
    routing = served_paths
    if control is not None:
        app.add_api(
            copy.deepcopy(control),
            base_path=admin.PREFIX,
            resolver=SnakeCaseResolver(),
            validator_map=VALIDATOR_MAP,
            validate_responses=settings.debug,
            pythonic_params=False,
            swagger_ui_options=SwaggerUIOptions(swagger_ui=False, serve_spec=False),  # Documents serves its document and page
        )
        routing = admin.with_admin_paths(routing, control)
    routes = SpecRoutes(routing)
    served_routes = SpecRoutes(served_paths)  # without the control plane's
    error_responses.register(app, service.dialect or SpecDialect(spec, served_routes, admin.PREFIX + "/"))
    app.add_middleware(
        CORSMiddleware,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        allow_origins=list(settings.cors_origins),
        allow_methods=["*"],
        allow_headers=["*"],
    )
    app.add_middleware(AccessLog, position=MiddlewarePosition.BEFORE_EXCEPTION)
    if control is not None or settings.metrics:
        app.add_middleware(
            Recorder,
            position=MiddlewarePosition.BEFORE_EXCEPTION,
            service=service.key,
            skip=(admin.PREFIX, METRICS_PATH) if settings.metrics else (admin.PREFIX,),
            coverage=control is not None,
            journal=settings.journal_size > 0,
            metrics=settings.metrics,
        )
    if settings.metrics:
        app.add_middleware(MetricsPage, position=MiddlewarePosition.BEFORE_SWAGGER, service=service.key)
    secured = bool(settings.api_key)  # the page offers Authorize only when a key is checked
    app.add_middleware(Documents, position=MiddlewarePosition.BEFORE_SWAGGER, spec=spec, base=base, secured=secured)
    if control is not None:
        app.add_middleware(Documents, position=MiddlewarePosition.BEFORE_SWAGGER, spec=control, prefix=admin.PREFIX, secured=secured)
    app.add_middleware(RequestGate, position=MiddlewarePosition.BEFORE_SWAGGER, routes=routes, assets=DOCS)
    _add_request_checks(app, settings, spec if not service.built_in else None, routes, served_routes)
    app.add_middleware(FaultInjector, position=MiddlewarePosition.BEFORE_ROUTING, service=service.key, faults=faults, rules=control is not None)
    return app


def _add_request_checks(app: AsyncApp, settings: Settings, user_spec: dict[str, Any] | None, routes: SpecRoutes, served_routes: SpecRoutes) -> None:
    """What a request must be before it is routed: no larger than the limit, with ``API_KEY``
    set the key where the spec secures an operation, and for a user's spec the credentials
    its operations' security names."""
    app.add_middleware(BodyLimit, position=MiddlewarePosition.BEFORE_ROUTING, max_bytes=settings.max_body_bytes)
    if settings.api_key:
        app.add_middleware(
            ApiKeyGuard,
            position=MiddlewarePosition.BEFORE_ROUTING,
            key=settings.api_key,
            reads=settings.api_key_reads,
            routes=routes,
            always_under=admin.PREFIX + "/",
        )
    if user_spec is not None:
        app.add_middleware(CredentialsGuard, position=MiddlewarePosition.BEFORE_ROUTING, spec=user_spec, routes=served_routes)


def check_store(settings: Settings) -> None:
    """Open and close the store once, as a worker will: raises ``StoreRefused`` (or
    ``OSError``) now, in the supervisor, rather than in workers it would start again and again."""
    store = make_store(settings, served(settings))

    async def check() -> None:
        await store.open()
        await store.close()

    asyncio.run(check())


@functools.cache
def _app_from_environment() -> AsyncApp:
    if SUPERVISOR in os.environ:  # a worker of ``cms-mock --workers N``
        tie_to_supervisor(int(os.environ[SUPERVISOR]))
    settings = Settings.from_env()
    configure_logging(settings.log_level, force=False)  # a host that set up logging keeps it
    protocol.limit(settings.head_timeout, settings.max_head_bytes, settings.max_connections)
    return create_app(settings)


def __getattr__(name: str) -> AsyncApp:
    """``cms_mock.app:app``: one app, built from the environment on first access."""
    if name == "app":
        return _app_from_environment()
    raise AttributeError(name)
