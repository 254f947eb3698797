"""The image, built from the Dockerfile as it is and run with podman (``tests/support/podman.py`` says
how, with no image registry): it serves, keeps its records on its volume from one container to
the next, runs as a non-root user, and its HEALTHCHECK passes."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.support import ROOT
from tests.support.data import NEW_CUSTOMER
from tests.support.podman import TOOLS, Container, Podman
from tests.support.ports import free_port
from tests.support.tools import require

pytestmark = [pytest.mark.live, pytest.mark.tools]


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        require(", ".join(missing), ".ci/run installs Debian's podman, mmdebstrap, runc and uidmap")
    return Podman(tmp_path_factory.mktemp("podman"))


@pytest.fixture(scope="module")
def image(podman: Podman) -> Iterator[str]:
    """The image, under a tag of this run's own (another run on the machine builds its own),
    removed at the end with the layers its build left."""
    tag = f"localhost/cms-mock:test-{uuid.uuid4().hex[:12]}"
    podman.make_base()
    try:
        podman.build(ROOT, tag)
        yield tag
    finally:
        if podman.has_image(tag):
            podman.remove_image(tag)


@contextmanager
def new_volume(podman: Podman) -> Iterator[str]:
    """A named volume of its own, removed on the way out."""
    name = f"cms-mock-test-{uuid.uuid4().hex[:12]}"
    podman("volume", "create", name)
    try:
        yield name
    finally:
        podman("volume", "rm", "--force", name)


@contextmanager
def running(podman: Podman, image: str, volume: str) -> Iterator[Container]:
    """A container of ``image`` over ``volume``, serving; removed on the way out."""
    container = Container(podman, image, volume, free_port())
    try:
        container.start()
        container.wait_healthy()
        yield container
    finally:
        container.remove()


@pytest.fixture(scope="module")
def container(podman: Podman, image: str) -> Iterator[Container]:
    with new_volume(podman) as volume, running(podman, image, volume) as started:
        yield started


def test_it_answers_health(container: Container) -> None:
    answer = httpx.get(f"{container.url}/health", timeout=5)
    assert answer.status_code == 200
    assert answer.json()["status"] == "healthy"


def test_it_runs_as_a_non_root_user(container: Container) -> None:
    assert container.inspect(".Config.User") not in {"", "root", "0"}
    uid = container.podman("exec", container.name, "id", "-u").stdout.strip()
    assert uid.isdigit()
    assert uid != "0"


def test_its_healthcheck_reports_healthy(container: Container) -> None:
    check = json.loads(container.inspect("json .Config.Healthcheck"))
    assert "/health" in " ".join(check["Test"])
    container.podman("healthcheck", "run", container.name)
    assert container.inspect(".State.Health.Status") == "healthy", container.inspect("json .State.Health")


def test_a_record_outlives_its_container_on_the_volume(podman: Podman, image: str) -> None:
    with new_volume(podman) as volume:
        with running(podman, image, volume) as first:
            created = httpx.post(f"{first.url}/api/customers/", json=NEW_CUSTOMER, timeout=10)
            assert created.status_code == 201, created.text
            assert first.stop() == 0, f"it did not stop cleanly on SIGTERM:\n{first.logs()}"
        with running(podman, image, volume) as second:
            kept = httpx.get(f"{second.url}/api/customers/{created.json()['id']}", timeout=10)
            assert kept.status_code == 200, kept.text
            assert kept.json() == created.json()
