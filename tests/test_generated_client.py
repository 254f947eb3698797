"""How consumers use the spec: a client generated from openapi.yaml, against a live server."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from tests.support import ROOT

pytestmark = [pytest.mark.live, pytest.mark.tools]


@pytest.fixture
def generated(tmp_path, monkeypatch):
    """Generate ``cms_client`` with openapi-python-client and make it importable."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(ROOT / "openapi.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / "cms_client"),
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("cms_client")
    for name in [n for n in sys.modules if n == "cms_client" or n.startswith("cms_client.")]:
        del sys.modules[name]


def test_generated_client_round_trip(generated, live_server):
    from cms_client.api.customers import create_customer, delete_customer, get_customer, list_customers, update_customer
    from cms_client.api.service import get_health
    from cms_client.models import Customer, CustomerCreate, CustomerUpdate, HTTPValidationError, Status

    with generated.Client(base_url=live_server.url) as client:
        new = CustomerCreate(name="Gen Client", email="gen@example.com", phone="+1-555-4242", address="1 Codegen Way", company="OpenAPI Inc")
        created = create_customer.sync(client=client, body=new)
        assert isinstance(created, Customer)
        assert created.status == Status.ACTIVE

        fetched = get_customer.sync(created.id, client=client)
        assert fetched == created

        updated = update_customer.sync(created.id, client=client, body=CustomerUpdate(status=Status.INACTIVE, phone="+1-555-0000"))
        assert isinstance(updated, Customer)
        assert (updated.status, updated.phone, updated.name) == (Status.INACTIVE, "+1-555-0000", "Gen Client")
        assert updated.updated_at > created.updated_at

        page = list_customers.sync_detailed(client=client, status=Status.INACTIVE, q="GEN CLIENT", sort="-created_at", limit=1)
        assert [c.id for c in page.parsed] == [created.id]
        assert page.headers["x-total-count"] == "1"
        refused = list_customers.sync(client=client, limit=0)
        assert isinstance(refused, HTTPValidationError)
        assert refused.detail[0].loc == ["query", "limit"]

        tag = get_customer.sync_detailed(created.id, client=client).headers["etag"]
        stale = update_customer.sync_detailed(created.id, client=client, body=CustomerUpdate(name="Second Writer"), if_match='"stale"')
        assert stale.status_code == 412
        renamed = update_customer.sync_detailed(created.id, client=client, body=CustomerUpdate(name="First Writer"), if_match=tag)
        assert (renamed.status_code, renamed.parsed.name) == (200, "First Writer")
        assert update_customer.sync_detailed(created.id, client=client, body=CustomerUpdate(name="Late"), if_match=tag).status_code == 412

        listed = list_customers.sync(client=client)
        assert [c.id for c in listed][-1] == created.id
        assert get_health.sync(client=client).total_customers == 3

        invalid = create_customer.sync(client=client, body=CustomerCreate(name="X", email="nope", phone="1", address="a", company="c"))
        assert isinstance(invalid, HTTPValidationError)
        assert invalid.detail[0].loc == ["body", "email"]

        assert delete_customer.sync_detailed(created.id, client=client).status_code == 204
        assert get_customer.sync_detailed(created.id, client=client).status_code == 404
