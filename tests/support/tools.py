"""Tools nobody here wrote (npm's, PostgreSQL, podman, curl...), and what a missing one means."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parent.parent / "node"
"""The Node tools' project: ``npm ci`` installs them from its lock file (the ``node_bin`` fixture)."""


def require(component: str, why: str) -> None:
    """Skip a test whose component is missing, except in CI (``CI=true``), where that fails the
    run: a check that quietly does not run proves nothing."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{component} is missing; {why}")
    pytest.skip(f"{component} is not installed (with CI=true this fails)")
