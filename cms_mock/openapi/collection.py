"""What a list operation's query parameters mean, read from the spec, and the headers that
describe a page of it (``X-Total-Count``, ``Link``).

The spec declares the parameters and their rules (checked before the handler runs); their
meaning follows from their names: one named after a field of the record matches that field
exactly, ``q`` searches the fields its ``x-search`` lists, ``sort`` names fields (``-`` first:
descending), ``limit`` and ``offset`` cut a page (``per_page``, ``size``, ``page_size`` or
``pageSize`` for ``limit``, and ``page``, counted from 1, for ``offset``). A parameter the spec does not declare never
reaches here (connexion leaves it out), so it changes nothing, as in the seed's framework.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from typing import Any

from connexion.decorators.parameter import sanitized

from cms_mock.openapi.routes import resolved
from cms_mock.openapi.schemas import named
from cms_mock.stores import Fields, Page, Query

_TIMES = ("created_at", "updated_at")
_SIZES = ("limit", "per_page", "size", "page_size", "pageSize")


@dataclasses.dataclass(frozen=True)
class Collection:
    """The list operation of a service, as its spec declares it."""

    parameters: tuple[str, ...]
    """Every query parameter the operation declares, in its order."""
    filters: frozenset[str]
    """Query parameters named after a field of the record: records whose field equals the value."""
    fields: Fields
    """The record's fields; ``searched``: what ``q`` searches (the parameter's ``x-search``);
    ``indexed``: every filter, and the times of creation and change (the usual sort keys)."""
    size: str = "limit"
    """The parameter that sizes a page: ``limit``, or the first of ``per_page``, ``size``,
    ``page_size`` and ``pageSize`` the operation declares."""
    pages: bool = False
    """Whether pages are numbered (``page``, from 1) rather than counted off (``offset``)."""
    arguments: dict[str, str] = dataclasses.field(default_factory=dict)
    """The declared name of each parameter connexion hands over under another (``pet-type`` as ``pettype``)."""

    @classmethod
    def of(cls, spec: dict[str, Any], operation_id: str, record_schema: str) -> Collection:
        operations = (operation for item in spec["paths"].values() for operation in item.values() if isinstance(operation, dict))
        operation = next(operation for operation in operations if operation.get("operationId") == operation_id)
        parameters = [resolved(spec, parameter) for parameter in operation.get("parameters", [])]
        query = {parameter["name"]: parameter for parameter in parameters if parameter["in"] == "query"}
        fields = {name: resolved(spec, schema) for name, schema in named(spec, record_schema)["properties"].items()}
        return cls(
            parameters=tuple(query),
            filters=frozenset(name for name in query if name in fields and name not in (*_SIZES, "page", "offset")),
            fields=Fields(
                names=tuple(fields),
                numbers=frozenset(name for name, schema in fields.items() if schema.get("type") in ("integer", "number")),
                indexed=tuple(name for name in fields if name in query or name in _TIMES),
                searched=tuple(query.get("q", {}).get("x-search", ())),
            ),
            size=next((name for name in _SIZES if name in query), "limit"),
            pages="page" in query and "offset" not in query,
            arguments={sanitized(name): name for name in query if sanitized(name) != name},
        )

    def query(self, params: dict[str, Any]) -> Query | None:
        """The ``Query`` of a request's parameters (None when it has none: the plain list)."""
        given = {self.arguments.get(name, name): value for name, value in params.items() if value is not None}
        if not given:
            return None
        limit = given.get(self.size)
        if limit is not None:
            limit = max(limit, 0)  # a spec that bounds neither: no record on a page of 0 or fewer
        page = given.get("page", 1) if self.pages else 1
        return Query(
            equal=tuple((name, value) for name, value in given.items() if name in self.filters),
            text=given.get("q"),
            sort=_sort(given.get("sort", "")),
            fields=self.fields,
            limit=limit,
            offset=(max(page, 1) - 1) * limit if self.pages and limit else max(given.get("offset", 0), 0),
        )


def _sort(text: str) -> tuple[tuple[str, bool], ...]:
    """``sort``'s fields as (field, descending), each once: a field named again could only break
    ties it already broke, so ``name,-name,name,...`` costs one sort, not one per mention."""
    keys: dict[str, bool] = {}
    for name in filter(None, text.split(",")):
        keys.setdefault(name.removeprefix("-"), name.startswith("-"))
    return tuple(keys.items())


def page_headers(collection: Collection, page: Page, query: Query, path: str, raw_query: str) -> dict[str, str]:
    """``X-Total-Count``: the matches before paging; with a ``limit``, ``Link`` (RFC 8288) to the
    first, previous, next and last pages, as references relative to this server that keep the
    request's other declared parameters (the undeclared, ignored, are left out: a link is never
    longer than the parameters' own limits allow). ``prev`` of a page past the end is the last page."""
    headers = {"X-Total-Count": str(page.total)}
    if not query.limit or not (collection.pages or "offset" in collection.parameters):
        return headers  # no page, pages of nothing, or no parameter a link could name the next page with
    limit, offset = query.limit, query.offset
    last = max(page.total - 1, 0) // limit * limit
    kept = [
        (name, value)
        for name, value in urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
        if name in collection.parameters and name not in (collection.size, "offset", "page")
    ]

    def link(to: int, rel: str) -> str:
        where = ("page", str(to // limit + 1)) if collection.pages else ("offset", str(to))
        target = urllib.parse.urlencode([*kept, (collection.size, str(limit)), where], quote_via=urllib.parse.quote)
        return f'<{path}?{target}>; rel="{rel}"'

    links = [link(0, "first")]
    if offset > 0:
        links.append(link(min(max(offset - limit, 0), last), "prev"))
    if offset + limit < page.total:
        links.append(link(offset + limit, "next"))
    links.append(link(last, "last"))
    headers["Link"] = ", ".join(links)
    return headers
