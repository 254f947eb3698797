"""The specs themselves: valid OpenAPI, no duplicate keys (YAML keeps the last silently)."""

from __future__ import annotations

import pytest
import yaml
from openapi_spec_validator import validate

from cms_mock.openapi.patterns import check_patterns
from cms_mock.services import SERVICES
from tests.support import ROOT


class _StrictLoader(yaml.SafeLoader):
    pass


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    keys = [loader.construct_object(key) for key, _ in node.value]
    duplicates = {k for k in keys if keys.count(k) > 1}
    assert not duplicates, f"duplicate keys {duplicates} at line {node.start_mark.line + 1}"
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


@pytest.mark.parametrize("name", ["openapi.yaml", "profile-openapi.yaml", "admin-openapi.yaml"])
def test_spec_is_valid_openapi_without_duplicate_keys(name):
    spec = yaml.load((ROOT / name).read_text(encoding="utf-8"), _StrictLoader)
    validate(spec)
    operation_ids = [op["operationId"] for item in spec["paths"].values() for op in item.values() if isinstance(op, dict) and "operationId" in op]
    assert len(operation_ids) == len(set(operation_ids))


@pytest.mark.parametrize(
    "bad",
    [{"pattern": "(?<=x"}, {"properties": {"a": {"pattern": "[z-a]"}}}, {"x-error": {"msg": "only a message"}}],
)
def test_a_spec_the_server_cannot_use_stops_the_start(bad):
    with pytest.raises(ValueError, match=r"pattern|x-error"):
        check_patterns({"components": {"schemas": {"S": bad}}})


def test_the_built_in_services_start_with_the_seeds_records():
    """Their start records are their lists' examples: the seed's first customer, first."""
    first = SERVICES["cms"].rules.samples()[0]
    assert first == {
        "id": "e20a1b70-67c9-4fb4-9f6d-56ba97a87c14",
        "name": "John Doe",
        "email": "john.doe@example.com",
        "phone": "+1-555-0101",
        "address": "123 Main St, New York, NY 10001",
        "company": "Tech Corp",
        "status": "active",
        "created_at": "2026-02-01T10:00:00.000000",
        "updated_at": "2026-02-01T10:00:00.000000",
    }
    assert [record["id"] for record in SERVICES["profile"].rules.samples()] == [1, 2, 3]
    assert SERVICES["cms"].rules.samples() is not SERVICES["cms"].rules.samples()  # each caller its own copy
