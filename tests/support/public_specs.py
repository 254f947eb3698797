"""Public specs written for other servers (``tests/specs/``, each with its licence), what each
one's resource is, and a judge of answers that is not the server's own validator."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import yaml

from tests.support import ROOT

SPECS = ROOT / "tests" / "specs"
PETSTORE = SPECS / "petstore-expanded.yaml"


@dataclasses.dataclass(frozen=True)
class Case:
    """A public spec, and what its resource is, for the tests every spec goes through."""

    file: str
    base: str
    collection: str
    item: str
    id_field: str
    new: dict[str, Any]
    change: dict[str, Any] | None
    bad: dict[str, Any]
    refused: int
    auth: tuple[str, str] | None = None
    """Credentials of the kind the spec's security asks for (any value passes)."""

    @property
    def path(self) -> Path:
        return SPECS / self.file


CASES = [
    Case("petstore-expanded.yaml", "/v2", "/pets", "/pets/{id}", "id", {"name": "Rex", "tag": "dog"}, None, {"tag": 5}, 422),
    Case(
        "museum.yaml",
        "/_mock/docs/openapi/museum-api",
        "/special-events",
        "/special-events/{eventId}",
        "eventId",
        {"name": "Tea", "location": "Temporal Tearoom", "eventDescription": "Sip tea.", "dates": ["2024-11-18"], "price": 5},
        {"price": 15},
        {"name": 5},
        400,  # the spec declares a 400 and no 422
        ("visitor", "any password"),  # every operation asks for HTTP basic
    ),
]


class Judge:
    """Checks an answer against what the spec declares for its operation and status."""

    def __init__(self, path: Path) -> None:
        self.spec = yaml.safe_load(path.read_text(encoding="utf-8"))

    def __call__(self, response: httpx.Response, template: str) -> Any:
        operation = self.spec["paths"][template][response.request.method.lower()]
        responses = {code: self._resolved(response) for code, response in operation["responses"].items()}
        status = str(response.status_code)
        assert status in responses or "default" in responses, f"{response.request.method} {template} answered an undeclared {status}"
        declared = responses.get(status, responses.get("default"))
        content = declared.get("content")
        if not content:
            assert response.content == b""
            return None
        media_type = response.headers["content-type"].split(";")[0]
        assert media_type in content, f"{media_type} is not declared for {status}"
        body = response.json()
        schema = {**content[media_type]["schema"], "components": self.spec.get("components", {})}
        jsonschema_rs.validator_for(schema).validate(body)
        return body

    def _resolved(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = self.spec["components"]["responses"][node["$ref"].rsplit("/", 1)[1]]
        return node
