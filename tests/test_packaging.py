"""What a service needs beyond its spec, handlers and entry is read from the services table:
the wheel bundles every spec, and the image copies every spec; the documents give CI's command."""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

from cms_mock.services import SERVICES
from tests.support import ROOT


def test_the_wheel_bundles_the_spec_of_every_service(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path), str(ROOT)], check=True, timeout=300)
    [wheel] = tmp_path.glob("cms_mock-*.whl")
    bundled = set(zipfile.ZipFile(wheel).namelist())
    for service in SERVICES.values():
        assert f"cms_mock/specs/{service.path.name}" in bundled
        assert (ROOT / service.path.name).read_bytes() == zipfile.ZipFile(wheel).read(f"cms_mock/specs/{service.path.name}")


def test_the_image_copies_the_spec_of_every_service():
    patterns = [p for line in re.findall(r"^COPY (.+) \./$", (ROOT / "Dockerfile").read_text(), re.MULTILINE) for p in line.split()]
    for service in SERVICES.values():
        assert any(Path(service.path.name).match(pattern) for pattern in patterns), service.path.name


def test_the_readme_and_the_development_page_give_exactly_the_command_ci_runs():
    """CI runs ``.ci/run``; a reader copies the command from the README or the docs."""
    command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert command.startswith("apt-get update && ")
    assert command.endswith(".venv/bin/tox")
    for page in ("README.md", "docs/development.md"):
        assert command in (ROOT / page).read_text().splitlines(), page


def test_the_pre_commit_hooks_run_what_the_lint_environment_runs():
    """A check added to ``tox -e lint`` and not to the hooks (or the other way round) fails here."""
    lint = configparser.ConfigParser(interpolation=None)
    lint.read(ROOT / "tox.ini")
    commands = [line.strip() for line in lint["testenv:lint"]["commands"].strip().splitlines()]
    hooks = [hook["entry"] for repo in yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"] for hook in repo["hooks"]]

    def site_dir_aside(command: str) -> str:
        return re.sub(r" --site-dir \S+", "", command)

    assert [site_dir_aside(command) for command in commands] == [site_dir_aside(hook) for hook in hooks]
