"""The contracts this engine serves: each is a spec, a data file, an id policy and a dialect.

Adding a service is a spec file, a handlers module and an entry here; nothing else changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cms_mock import samples
from cms_mock.error_responses import DetailDialect, Dialect, ErrorDialect

_PACKAGE = Path(__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class Service:
    key: str
    spec_file: str
    data_file: str
    ids: str
    default_port: int
    samples: Callable[[], list[dict[str, Any]]]
    dialect: Dialect

    @property
    def spec_path(self) -> Path:
        """The spec: bundled in the wheel under ``cms_mock/specs``, at the repository root in a checkout."""
        bundled = _PACKAGE / "specs" / self.spec_file
        return bundled if bundled.exists() else _PACKAGE.parent / self.spec_file


SERVICES = {
    "cms": Service("cms", "openapi.yaml", "customers.json", "uuid4", 3001, samples.customers, DetailDialect()),
    "profile": Service("profile", "profile-openapi.yaml", "profiles.json", "int", 8000, samples.profiles, ErrorDialect()),
}
