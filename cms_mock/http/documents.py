"""The documents a service serves beside its operations: its spec, its Swagger UI page, a favicon.

Connexion would serve the spec with every ``$ref`` inlined (a client generated from the URL
then has a model for nearly every reference, not one for each schema) and
``servers: [{url: ''}]``; here the spec goes out as written, as JSON and as YAML, with one server added in front:
``/``, the server that served it, whatever host and port it runs on. The Swagger UI page is
connexion's, with the service's title, at ``/docs`` itself (connexion redirects it); its
scripts and styles are still served by connexion under ``/docs/``.

The page reads its own copy of the spec, ``/docs/openapi.json``: the spec as served when the
service runs with ``API_KEY``, and without its security requirements when it does not, so
that an open service shows no padlock on its operations and no Authorize button for a key
nothing checks. ``/openapi.json`` keeps them: generated clients and tools need them.
"""

from __future__ import annotations

import html
from typing import Any

import orjson
import yaml
from starlette.types import ASGIApp, Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path

from cms_mock.errors import ApiError
from cms_mock.openapi.routes import METHODS

DOCS = "/docs"
PAGE_SPEC = f"{DOCS}/openapi.json"

_PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>{title} - API documentation</title>
    <link rel="stylesheet" type="text/css" href="/docs/swagger-ui.css">
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
    <link rel="icon" type="image/png" href="/docs/favicon-16x16.png" sizes="16x16">
    <style>body {{ margin: 0; background: #fafafa; }}</style>
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="/docs/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script>
      window.onload = function () {{
        window.ui = SwaggerUIBundle({{
          url: "{spec_url}",
          dom_id: "#swagger-ui",
          deepLinking: true,
          presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
          plugins: [SwaggerUIBundle.plugins.DownloadUrl],
          layout: "StandaloneLayout",
        }});
      }};
    </script>
  </body>
</html>
"""


_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""libyaml's emitter where PyYAML has it: the same document, written as every app starts."""


def served_spec(spec: dict[str, Any], base: str = "") -> dict[str, Any]:
    """The spec as written, with the server that serves it listed first (at ``base``, the API's
    paths' prefix on this server)."""
    this_server = {"url": base or "/", "description": "The server that served this document"}
    return {**spec, "servers": [this_server, *spec.get("servers", [])]}


def open_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` without security requirements (the document's and each operation's) and
    without security schemes: what a service that checks no key asks of its callers."""
    paths = {
        path: {name: _without(operation, "security") if name in METHODS else operation for name, operation in item.items()}
        for path, item in spec["paths"].items()
    }
    components = spec.get("components", {})
    return {**_without(spec, "security"), "paths": paths, "components": _without(components, "securitySchemes")}


def _without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {name: value for name, value in mapping.items() if name != key}


class Documents:
    """Answers ``GET`` (and ``HEAD``) of the spec, the Swagger UI page and the favicon from bytes
    built once; ``prefix``: where a second API (the control plane) serves its own; ``base``:
    where the API's paths begin (its first ``servers`` URL's path); ``secured``: the service
    asks for a key (``API_KEY``), so its page offers Authorize."""

    def __init__(self, app: ASGIApp, spec: dict[str, Any], prefix: str = "", base: str = "", secured: bool = False) -> None:
        self.app = app
        served = served_spec(spec, prefix + base)
        page_spec = served if secured else open_spec(served)
        page = _PAGE.format(title=html.escape(spec["info"]["title"]), spec_url=f"{prefix}{PAGE_SPEC}").encode()
        self._documents = {
            f"{prefix}/openapi.json": (b"application/json", orjson.dumps(served)),
            f"{prefix}{PAGE_SPEC}": (b"application/json", orjson.dumps(page_spec)),
            f"{prefix}/openapi.yaml": (
                b"application/yaml; charset=utf-8",
                yaml.dump(served, Dumper=_YAML_DUMPER, sort_keys=False, allow_unicode=True).encode(),
            ),
            f"{prefix}{DOCS}": (b"text/html; charset=utf-8", page),  # no redirect to /docs/: the page's links are absolute
            f"{prefix}{DOCS}/": (b"text/html; charset=utf-8", page),
            f"{prefix}{DOCS}/index.html": (b"text/html; charset=utf-8", page),
        }
        if not prefix:
            self._documents["/favicon.ico"] = (b"image/png", (swagger_ui_path / "favicon-32x32.png").read_bytes())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        document = self._documents.get(scope["path"]) if scope["type"] == "http" else None
        if document is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            raise ApiError("Method Not Allowed", status=405, headers={"Allow": "GET, HEAD"})
        content_type, body = document
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body if scope["method"] == "GET" else b""})
