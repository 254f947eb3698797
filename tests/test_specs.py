"""The specs themselves: valid OpenAPI, no duplicate keys (YAML keeps the last silently)."""

from __future__ import annotations

import pytest
import yaml
from openapi_spec_validator import validate

from cms_mock.openapi.patterns import check_patterns
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
