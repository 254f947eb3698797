"""Schemathesis against both specs, every check on, positive and negative data, stateful links.

Schemathesis generates its own data (no hook narrows what it sends): whatever the spec allows,
the server must accept, and whatever it forbids, refuse. In-process over ASGI for speed, then
the CLI against a real uvicorn, with all four phases
(examples, coverage, fuzzing, and stateful runs through the specs' OpenAPI links). The
stateful phase runs only there: in-process, hypothesis replays a state machine against a
store that has moved on and reports its own data generation as flaky.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from cms_mock.app import create_app
from cms_mock.settings import Settings
from tests.conftest import LiveServer

SPECS = {"cms": "openapi.yaml", "profile": "profile-openapi.yaml"}


@pytest.fixture(params=sorted(SPECS))
def asgi_schema(request, tmp_path):
    app = create_app(Settings(service=request.param, data_dir=tmp_path, debug=True))
    with app.test_client():  # runs the lifespan: the real store opens over tmp_path
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("asgi_schema")


@schema.parametrize()
@settings(max_examples=30, suppress_health_check=list(HealthCheck), deadline=None, database=None)
def test_every_operation_conforms_in_process(case):
    case.call_and_validate()


@pytest.mark.parametrize("service", sorted(SPECS))
def test_schemathesis_cli_against_a_live_server(tmp_path, service, backend):
    """On the JSON file and on PostgreSQL (``backend``): the same contract, whatever holds the records."""
    env = {"DATABASE_URL": str(backend["database_url"])} if backend else {}
    server = LiveServer(tmp_path / "data", "serve", service, env=env).start()
    try:
        summary = schemathesis_finds_nothing(SPECS[service], server.url)
    finally:
        server.stop()
    print(f"schemathesis {service}: {summary}")


def schemathesis_finds_nothing(spec: str, url: str, *options: str) -> str:
    """Schemathesis' CLI, every check and phase, against ``url``; its summary when nothing failed."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            spec,
            "--url",
            url,
            "--checks",
            "all",
            *options,
            "--mode",
            "all",
            "--max-examples",
            os.environ.get("ST_MAX_EXAMPLES", "40"),
            "--seed",
            os.environ.get("ST_SEED", "1"),
            "--workers",
            "1",  # with 2, hypothesis' ast.parse in threads hit CPython 3.11's gh-106905 now and then
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).parent.parent,
    )
    summary = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert summary is not None
    assert summary.group(1) == summary.group(2)
    return summary.group(0)
