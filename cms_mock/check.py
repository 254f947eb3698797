"""``cms-mock check --spec FILE``: what the engine understood of a spec, before serving it.

It prints the resources it found (their paths, record schema, id field and how ids are made,
what each operation does), the operations answered from the spec's examples, how errors are
written, and what the engine adds to the served document; or, for a spec it cannot serve, where
(a JSON pointer) and what to add. Exit status 0: the spec can be served; 2: it cannot.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from cms_mock.openapi import additions
from cms_mock.openapi.resources import answered_from_examples
from cms_mock.openapi.routes import base_path
from cms_mock.services import ERRORS, Service, served
from cms_mock.settings import Settings, SettingsError


def report(service: Service) -> list[str]:
    """The lines ``check`` prints of ``service``."""
    spec = service.served_spec()
    resource, rules = service.resource, service.rules
    roles = ", ".join(f"{role}: {operation}" for operation, role in resource.roles.items())
    ids = "counted 1, 2, 3... and never given twice" if rules.counted_ids else "a UUID v4 made by the server"
    lines = [
        f"{spec['info']['title']} (OpenAPI {spec['openapi']}): served under {base_path(spec) or '/'}, port {service.default_port} unless --port says",
        f"resource {resource.name}: {resource.collection} and {resource.item}",
        f"  record: {resource.record_schema}, keyed by {rules.id_field} ({ids}); "
        + ("created_at and updated_at kept by the server" if rules.stamped else "no timestamps kept by the server"),
        f"  operations: {roles}; a create answers {resource.created}",
        f"  list query: {', '.join(service.collection.parameters) or 'none'}; filters: {', '.join(sorted(service.collection.filters)) or 'none'}",
        f"  stored in: {service.data_file} (the JSON file store), table {service.table} (PostgreSQL)",
        f"  a new store starts with: {'the list example' if resource.declared.get('start') == 'examples' else 'no records'}",
    ]
    examples = answered_from_examples(spec, [resource])
    lines.append("answered from the spec's examples: " + (", ".join(f"{method.upper()} {path}" for path, method in examples) or "none"))
    lines.append(f"errors: {ERRORS[service.errors]}")
    lines.append("added by the engine: " + ("; ".join(additions.added(spec)) or "nothing"))
    return lines


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="cms-mock check", description="Print what cms-mock understands of an OpenAPI spec, without serving it.")
    parser.add_argument("--spec", type=Path, required=True, help="the OpenAPI 3.0 or 3.1 file (YAML or JSON)")
    args = parser.parse_args(argv)
    try:
        service = served(Settings(spec=args.spec))
    except SettingsError as exc:
        print(f"cms-mock: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report(service)))
    return 0
