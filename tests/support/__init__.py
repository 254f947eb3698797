"""What the tests share that is not a fixture: ports, servers, records, the specs, PostgreSQL, podman.

Test modules and ``bench`` import from here, never from one another or from ``conftest.py``
(which holds the fixtures and hooks only): ``bench`` may import ``tests.support``, nothing here
imports ``bench``.
"""

import pkgutil
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
"""The project's checkout: its specs, pages, Dockerfile and ``pyproject.toml``."""

# Before they are imported: a failed assert in a helper explains itself, as a test's does.
pytest.register_assert_rewrite(*(f"{__name__}.{module.name}" for module in pkgutil.iter_modules(__path__)))
