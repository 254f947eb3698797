"""Schemathesis against both specs, every check on, positive and negative data, stateful links.

Schemathesis generates its own data (no hook narrows what it sends): whatever the spec allows,
the server must accept, and whatever it forbids, refuse. In-process over ASGI for speed, then
the CLI against a real uvicorn, with all four phases
(examples, coverage, fuzzing, and stateful runs through the specs' OpenAPI links). The
stateful phase runs only there: in-process, hypothesis replays a state machine against a
store that has moved on and reports its own data generation as flaky.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from cms_mock.app import create_app
from cms_mock.settings import Settings
from tests.support.contract import SPECS
from tests.support.fuzzing import schemathesis_finds_nothing
from tests.support.public_specs import CASES
from tests.support.servers import LiveServer

pytestmark = pytest.mark.fuzz


@pytest.fixture(params=sorted(SPECS))
def asgi_schema(request, tmp_path):
    app = create_app(Settings(service=request.param, data_dir=tmp_path, debug=True))
    with app.test_client():  # runs the lifespan: the real store opens over tmp_path
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("asgi_schema")


@schema.parametrize()
@settings(max_examples=20, suppress_health_check=list(HealthCheck), deadline=None, database=None)
def test_every_operation_conforms_in_process(case):
    case.call_and_validate()


@pytest.mark.live
@pytest.mark.parametrize("service", sorted(SPECS))
def test_schemathesis_cli_against_a_live_server(tmp_path, service, backend):
    """On the JSON file and on PostgreSQL (``backend``): the same contract, whatever holds the records."""
    env = {"DATABASE_URL": str(backend["database_url"])} if backend else {}
    with LiveServer(tmp_path / "data", "serve", service, env=env).start() as server:
        summary = schemathesis_finds_nothing(SPECS[service], server.url)
    print(f"schemathesis {service}: {summary}")


@pytest.mark.live
@pytest.mark.parametrize("case", CASES, ids=[case.file for case in CASES])
def test_schemathesis_finds_nothing_against_a_served_public_spec(tmp_path, case):
    """Its own data generation, every check and phase (the stateful one through the links it
    infers from ``Location``), against the served document; 20 examples per operation here,
    more in ``tox -e fuzz``. ``ignored_auth`` expects made-up credentials refused; a mock takes
    any of the right kind."""
    with LiveServer(tmp_path / "data", "serve", "--spec", str(case.path), "--debug", base=case.base) as server:
        server.start()
        summary = schemathesis_finds_nothing(f"{server.url}/openapi.json", server.url + case.base, "--exclude-checks", "ignored_auth", examples=20)
    print(f"schemathesis {case.file}: {summary}")
