"""MkDocs hook: the configuration page's table of settings comes from the one table in code.

``cms_mock.settings.TABLE`` also feeds ``cms-mock --help`` and the pytest plugin's list of
variables it keeps from the servers it starts, so the page cannot name a setting, a flag or a
default the software does not have; the services (their names, ports and data files) fill in
what its rows say of them."""

from __future__ import annotations

import warnings
from typing import Any

from cms_mock.settings import settings_markdown

with warnings.catch_warnings():
    # connexion, which the services' modules import, still uses jsonschema's deprecated RefResolver (as pyproject's filterwarnings says).
    warnings.simplefilter("ignore", DeprecationWarning)
    from cms_mock.services import SERVICES

MARKER = "<!-- settings table -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """The marker, wherever a page has it, replaced by the table."""
    return markdown.replace(MARKER, settings_markdown(SERVICES.values())) if MARKER in markdown else markdown
