"""The specs through tools nobody here wrote: Spectral, Redocly, and a TypeScript client.

The tools are pinned in ``tests/node/package-lock.json`` (``node_bin`` in ``conftest.py``
installs them on first use).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.servers import LiveServer
from tests.support.tools import NODE_DIR

pytestmark = pytest.mark.tools

SPECS = ["openapi.yaml", "profile-openapi.yaml", "admin-openapi.yaml"]
QUIET = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true", "NO_COLOR": "1"}


def run(command: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=300, env=QUIET, **kwargs)  # type: ignore[call-overload]


@pytest.mark.parametrize("spec", SPECS)
def test_spectral_oas_ruleset_finds_nothing(node_bin, spec, tmp_path):
    report = tmp_path / "spectral.json"
    result = run([node_bin / "spectral", "lint", "-r", NODE_DIR / ".spectral.yaml", "-f", "json", "-o", report, ROOT / spec])
    problems = json.loads(report.read_text()) if report.exists() else None
    assert problems == [], result.stdout + result.stderr
    assert result.returncode == 0


@pytest.mark.parametrize("spec", SPECS)
def test_redocly_recommended_rules_find_nothing(node_bin, spec):
    result = run([node_bin / "redocly", "lint", "--extends", "recommended", "--format", "json", ROOT / spec])
    report = json.loads(result.stdout)
    assert report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}, json.dumps(report["problems"], indent=1)[:4000]


CONSUMER = """\
import createClient from "openapi-fetch";
import type { components, paths } from "./cms.js";

type Customer = components["schemas"]["Customer"];
type Problem = components["schemas"]["HTTPValidationError"];

const client = createClient<paths>({ baseUrl: process.argv[2] });

async function main(): Promise<void> {
  // No status: the spec leaves it optional, and the server makes the customer active.
  const created = await client.POST("/api/customers", {
    body: { name: "TS Client", email: "ts@example.test", phone: "+1-555-0300", address: "1 Typed Way", company: "Strict Inc" },
  });
  if (created.error !== undefined) throw new Error(JSON.stringify(created.error));
  const customer: Customer = created.data;

  // The id a response gives is what the path takes: no cast.
  const fetched = await client.GET("/api/customers/{customer_id}", { params: { path: { customer_id: customer.id } } });
  const updated = await client.PUT("/api/customers/{customer_id}", {
    params: { path: { customer_id: customer.id } },
    body: { status: "inactive" },
  });

  // A filtered page, and a change conditional on the version read before the update above.
  const page = await client.GET("/api/customers", { params: { query: { status: "inactive", q: "TYPED WAY", limit: 5 } } });
  const total = page.response.headers.get("X-Total-Count");
  const stale = await client.PUT("/api/customers/{customer_id}", {
    params: { path: { customer_id: customer.id }, header: { "If-Match": fetched.response.headers.get("ETag") ?? "" } },
    body: { name: "Late Writer" },
  });

  const refused = await client.POST("/api/customers", {
    body: { name: "", email: "not an address", phone: "1", address: "a", company: "c" },
  });
  let problems: string[] = [];
  if (refused.response.status === 422 && refused.error !== undefined) {
    const problem = refused.error as Problem;
    problems = problem.detail.map((item) => `${item.loc.join(".")}:${item.type}`);
  }
  // Timestamps carry no offset; read as the spec says, they are UTC.
  const createdAt = new Date(customer.created_at + "Z").toISOString();
  const paged = { ids: (page.data ?? []).map((item: Customer) => item.id), total, staleStatus: stale.response.status };
  console.log(JSON.stringify({ created: customer, fetched: fetched.data, updated: updated.data, problems, createdAt, paged }));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
"""

TSCONFIG = {
    "compilerOptions": {
        "strict": True,
        "target": "es2022",
        "module": "nodenext",
        "moduleResolution": "nodenext",
        "skipLibCheck": True,
        "outDir": "out",
        "types": [],
        "lib": ["es2022", "dom"],
    },
    "files": ["consumer.mts", "node.d.ts"],
}
NODE_GLOBALS = "declare const process: { argv: string[]; exit(code: number): never };\n"  # instead of all of @types/node


@pytest.mark.live
def test_a_strict_typescript_client_compiles_and_works_against_a_live_server(node_bin, tmp_path):
    """openapi-typescript types + openapi-fetch, ``tsc --strict``, then run with node."""
    work = tmp_path / "ts"
    work.mkdir()
    (work / "node_modules").symlink_to(NODE_DIR / "node_modules")
    generated = run([node_bin / "openapi-typescript", ROOT / "openapi.yaml", "-o", work / "cms.d.ts"])
    assert generated.returncode == 0, generated.stderr
    (work / "consumer.mts").write_text(CONSUMER)
    (work / "node.d.ts").write_text(NODE_GLOBALS)
    (work / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    compiled = run([node_bin / "tsc", "-p", work], cwd=work)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr

    with LiveServer(tmp_path / "data").start() as server:
        ran = run(["node", work / "out" / "consumer.mjs", server.url], cwd=work)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    result = json.loads(ran.stdout)
    assert result["created"]["status"] == "active"
    assert result["fetched"] == result["created"]
    assert result["updated"]["status"] == "inactive"
    assert result["problems"] == ["body.name:value_error.any_str.min_length", "body.email:value_error.email"]
    assert result["createdAt"].startswith(result["created"]["created_at"][:19])
    assert result["paged"] == {"ids": [result["created"]["id"]], "total": "1", "staleStatus": 412}
