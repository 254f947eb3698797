"""Bundle every spec at the repository root (``*openapi.yaml``) in the wheel, under
``cms_mock/specs``: a new service's spec is packaged without editing ``pyproject.toml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class SpecsHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        for spec in sorted(Path(self.root).glob("*openapi.yaml")):
            build_data["force_include"][str(spec)] = f"cms_mock/specs/{spec.name}"
