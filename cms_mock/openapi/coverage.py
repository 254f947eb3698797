"""Contract coverage: the counts of answers per operation and status, laid over the spec.

An operation is covered when any of its declared statuses was answered; a response (an
operation's declared status) when it was answered once. ``undeclared`` lists what the spec
does not declare for an operation (it should stay empty: the engine answers only what the
spec declares).
"""

from __future__ import annotations

import html
from typing import Any

from cms_mock.openapi.routes import METHODS
from cms_mock.state import Counts


def report(spec: dict[str, Any], counts: Counts) -> dict[str, Any]:
    """``GET /__admin/coverage``'s body (the ``Coverage`` schema)."""
    operations = []
    declared: set[tuple[str, int]] = set()
    for path, item in spec["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            name = operation["operationId"]
            statuses = [int(status) for status in operation.get("responses", {}) if status.isdigit()]
            declared.update((name, status) for status in statuses)
            responses = {str(status): counts.get((name, status), 0) for status in statuses}
            operations.append({"operationId": name, "method": method.upper(), "path": path, "responses": responses})
    answered = [op for op in operations if any(op["responses"].values())]
    all_responses = [count for op in operations for count in op["responses"].values()]
    return {
        "operations": operations,
        "summary": {
            "operations": {"covered": len(answered), "total": len(operations)},
            "responses": {"covered": sum(1 for count in all_responses if count), "total": len(all_responses)},
        },
        "undeclared": [
            {"operationId": name, "status": status, "count": count} for (name, status), count in sorted(counts.items()) if (name, status) not in declared
        ],
    }


def page(title: str, coverage: dict[str, Any]) -> str:
    """The same as a page a person reads after a test run: a row per operation, a cell per
    declared status, the uncovered ones marked."""
    summary = coverage["summary"]
    rows = []
    for op in coverage["operations"]:
        cells = "".join(f'<td class="{"hit" if count else "miss"}">{html.escape(status)}<br><b>{count}</b></td>' for status, count in op["responses"].items())
        rows.append(f"<tr><th>{html.escape(op['method'])} {html.escape(op['path'])}<br><small>{html.escape(op['operationId'])}</small></th>{cells}</tr>")
    undeclared = "".join(f"<li>{html.escape(u['operationId'])}: {u['status']} &times; {u['count']}</li>" for u in coverage["undeclared"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Coverage: {html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: .4em .6em; text-align: left; vertical-align: top; }}
td.hit {{ background: #d4f4d4; }} td.miss {{ background: #f8d0d0; }}
</style></head><body>
<h1>Contract coverage: {html.escape(title)}</h1>
<p>Operations covered: <b>{summary["operations"]["covered"]} of {summary["operations"]["total"]}</b>;
declared responses covered: <b>{summary["responses"]["covered"]} of {summary["responses"]["total"]}</b>
(green: answered at least once; red: never).</p>
<table>{"".join(rows)}</table>
<h2>Statuses the spec does not declare</h2>
{f"<ul>{undeclared}</ul>" if undeclared else "<p>None.</p>"}
</body></html>
"""
