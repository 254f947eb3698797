"""The app in-process, as the ``client`` fixtures drive it."""

from __future__ import annotations

from pathlib import Path

from cms_mock.app import create_app
from cms_mock.settings import Settings


def build_client(data_dir: Path, **settings: object):
    """An in-process client of a strict app (responses validated against the spec)."""
    settings.setdefault("debug", True)
    app = create_app(Settings(data_dir=data_dir, **settings))
    return app.test_client()
