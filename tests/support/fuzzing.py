"""Schemathesis' CLI against a live server: every check and phase, with the seed and examples the
environment sets (``ST_SEED``, ``ST_MAX_EXAMPLES``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.support import ROOT


def _unmeasured() -> dict[str, str]:
    """The environment without coverage's subprocess measurement (``tox -e py``): schemathesis is
    a tool run against the server, not code of the package, and measured it only runs slower."""
    return {name: value for name, value in os.environ.items() if name != "COVERAGE_PROCESS_CONFIG"}


def schemathesis_finds_nothing(spec: str, url: str, *options: str, examples: int = 25) -> str:
    """Schemathesis' CLI, every check and phase, against ``url``; its summary when nothing failed.
    ``examples`` per operation, unless ``ST_MAX_EXAMPLES`` says (``tox -e fuzz``)."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            spec,
            "--url",
            url,
            "--checks",
            "all",
            *options,
            "--mode",
            "all",
            "--max-examples",
            os.environ.get("ST_MAX_EXAMPLES", str(examples)),
            "--seed",
            os.environ.get("ST_SEED", "1"),
            "--workers",
            "1",  # with 2, hypothesis' ast.parse in threads hit CPython 3.11's gh-106905 now and then
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=_unmeasured(),
    )
    summary = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert summary is not None
    assert summary.group(1) == summary.group(2)
    return summary.group(0)
