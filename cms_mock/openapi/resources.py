"""The resources a spec declares: which paths hold records, and what each operation does to them.

A collection path (``/pets``) and its item path (``/pets/{petId}``) form a resource: ``GET`` on
the collection lists, ``POST`` creates; on the item ``GET`` reads, ``PUT`` and ``PATCH`` update,
``DELETE`` deletes. The stored record is what the item's ``GET`` answers. An operation that
names its own handler (``x-openapi-router-controller``) is the engine's, not a resource's.

What cannot be told from the paths is declared on the collection path with ``x-cms-mock``:
``data-file`` (the JSON store's file, ``<last segment>.json`` otherwise), ``noun`` (what a 404
calls a record, the record schema's name otherwise), ``id-field`` (the record's field that holds
its id: the one the item path's parameter names, else ``id``) and ``start`` (``examples``: a
store that was never written starts with the list's 200 example, else empty).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Literal

from cms_mock.openapi.routes import METHODS, resolved

Role = Literal["list", "create", "read", "update", "delete"]

EXTENSION = "x-cms-mock"
"""The vendor extension that declares what the engine cannot infer from a spec."""

_COLLECTION_ROLES: dict[str, Role] = {"get": "list", "post": "create"}
_ITEM_ROLES: dict[str, Role] = {"get": "read", "put": "update", "patch": "update", "delete": "delete"}


class SpecProblem(ValueError):
    """A spec the engine cannot serve: where (a JSON pointer), what is wrong, and what to add."""

    def __init__(self, pointer: str, problem: str) -> None:
        super().__init__(f"{pointer}: {problem}")


@dataclasses.dataclass(frozen=True)
class Resource:
    """A kind of record and the operations on it, as the spec declares them."""

    name: str
    """The collection path's last segment (``customers``)."""
    collection: str
    """The collection's path template (``/api/customers``): where ``Location`` points under."""
    item: str
    id_parameter: str
    """The item path's parameter, as connexion passes it to a handler."""
    record_schema: str
    """The name of the schema the item's ``GET`` answers (``components/schemas``)."""
    roles: dict[str, Role]
    """Each operation's ``operationId`` and what it does."""
    bodies: dict[Role, str]
    """The name of the request body's schema of ``create`` and ``update``: the fields they take."""
    declared: dict[str, Any]
    """The collection path's ``x-cms-mock``."""
    created: int = 201
    """The status a create answers: the success its operation declares (201, or 200 in some specs)."""
    methods: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    """The methods the spec declares on the collection and item paths."""

    @property
    def operations(self) -> list[tuple[str, str]]:
        """The (path template, method) of each of its operations."""
        return [
            (template, method)
            for template, table in ((self.collection, _COLLECTION_ROLES), (self.item, _ITEM_ROLES))
            for method in table
            if method in self.methods.get(template, ())
        ]

    @property
    def list_operation(self) -> str:
        return next(operation for operation, role in self.roles.items() if role == "list")

    @property
    def data_file(self) -> str:
        return str(self.declared.get("data-file", f"{self.name}.json"))

    def id_field(self, properties: dict[str, Any]) -> str:
        """The record's field that holds its id: ``x-cms-mock``'s ``id-field``, else the one the
        item path's parameter names (``{petId}``: ``petId``), else ``id``."""
        if "id-field" in self.declared:
            return str(self.declared["id-field"])
        return self.id_parameter if self.id_parameter in properties else "id"

    @property
    def noun(self) -> str:
        return str(self.declared.get("noun", self.record_schema))

    def start_records(self, spec: dict[str, Any]) -> list[dict[str, Any]]:
        """What a store that was never written starts with: the list's 200 example, when
        ``start: examples`` says so; nothing otherwise."""
        if self.declared.get("start") != "examples":
            return []
        listing = resolved(spec, spec["paths"][self.collection]["get"]["responses"].get("200", {}))
        media = listing.get("content", {}).get("application/json", {})
        found = media["example"] if "example" in media else next((resolved(spec, e).get("value") for e in media.get("examples", {}).values()), None)
        if not isinstance(found, list):
            raise SpecProblem(
                _pointer(self.collection, "get", "responses", "200"), "start: examples needs the list's 200 to have an example that is a list of records"
            )
        return list(found)


def find(spec: dict[str, Any]) -> list[Resource]:
    """Every resource of ``spec``, in the order of its collection paths: a path with a ``GET``
    and one item path below it (``/pets/{petId}``) with a ``GET`` too. A ``SpecProblem`` for
    one that lacks what the engine needs (a read answering a named schema)."""
    paths: dict[str, Any] = spec.get("paths", {})
    found = []
    for template, item in paths.items():
        if template.endswith("}") or not _unclaimed(item, "get"):
            continue
        children = [path for path in paths if re.fullmatch(re.escape(template) + r"/\{[^/{}]+\}", path) and _unclaimed(paths[path], "get")]
        if len(children) == 1:
            found.append(_resource(spec, template, children[0]))
    return found


def answered_from_examples(spec: dict[str, Any], resources: list[Resource]) -> list[tuple[str, str]]:
    """The operations (path template, method) of no resource and no handler of their own: what
    the engine answers from the spec's examples, as ``openapi.examples`` makes them."""
    owned = {operation for resource in resources for operation in resource.operations}
    return [
        (template, method)
        for template, item in spec.get("paths", {}).items()
        for method in METHODS
        if _unclaimed(item, method) and (template, method) not in owned
    ]


def _unclaimed(item: dict[str, Any], method: str) -> bool:
    """Whether the path item has an operation for ``method`` that no handler of its own claims."""
    return isinstance(item.get(method), dict) and "x-openapi-router-controller" not in item[method]


def _resource(spec: dict[str, Any], collection: str, item: str) -> Resource:
    paths = spec["paths"]
    roles: dict[str, Role] = {}
    bodies: dict[Role, str] = {}
    for template, table in ((collection, _COLLECTION_ROLES), (item, _ITEM_ROLES)):
        for method in METHODS:
            operation = paths[template].get(method)
            if operation is None or method not in table:
                continue
            if "operationId" not in operation:
                raise SpecProblem(_pointer(template, method), "every operation of a resource needs an operationId")
            role = roles[operation["operationId"]] = table[method]
            if role in ("create", "update"):
                body = resolved(spec, operation.get("requestBody", {}))
                bodies[role] = _schema_name(spec, body, _pointer(template, method, "requestBody"))
    if "list" not in roles.values() or "read" not in roles.values():
        raise SpecProblem(_pointer(collection), "a resource needs a GET on its collection and on its item")
    successes = [int(code) for code in paths[collection].get("post", {}).get("responses", {}) if re.fullmatch(r"2[0-9][0-9]", str(code))]
    answers = paths[item]["get"].get("responses", {})
    success = min((str(code) for code in answers if re.fullmatch(r"2[0-9][0-9]", str(code))), default="default")
    if success not in answers:
        raise SpecProblem(_pointer(item, "get", "responses"), "the item's GET declares no success: add its 200 with the record's schema")
    record = _schema_name(spec, resolved(spec, answers[success]), _pointer(item, "get", "responses", success))
    return Resource(
        name=collection.rsplit("/", 1)[1],
        collection=collection,
        item=item,
        id_parameter=item.rsplit("{", 1)[1].rstrip("}"),
        record_schema=record,
        roles=roles,
        bodies=bodies,
        declared=dict(paths[collection].get(EXTENSION, {})),
        created=min(successes, default=201),
        methods={template: tuple(method for method in METHODS if method in paths[template]) for template in (collection, item)},
    )


def _schema_name(spec: dict[str, Any], holder: dict[str, Any], pointer: str) -> str:
    """The name of the ``components/schemas`` entry a request body or response's JSON names."""
    schema = holder.get("content", {}).get("application/json", {}).get("schema", {})
    prefix = "#/components/schemas/"
    reference = schema.get("$ref", "")
    if not reference.startswith(prefix):
        raise SpecProblem(pointer, f"its application/json schema must be a $ref to {prefix}<name>")
    return str(reference.removeprefix(prefix))


def _pointer(template: str, *parts: str) -> str:
    """The JSON pointer (RFC 6901) of a path item or what is under it."""
    escaped = template.replace("~", "~0").replace("/", "~1")
    return "/".join(["#", "paths", escaped, *parts])
