"""The JSON-file store over a temporary directory: format, durability, backups, refusals."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from cms_mock.errors import CorruptDataFile
from cms_mock.handlers.runtime import json_array_response
from cms_mock.services import SERVICES
from cms_mock.stores import Listing, Streamed, datafile
from cms_mock.stores.datafile import _document, _members, _records, render
from cms_mock.stores.file import FileStore
from tests.support.app import build_client
from tests.support.data import NEW_CUSTOMER, sample_customers


def open_store(data_dir: Path, ids: str = "uuid4") -> FileStore:
    store = FileStore(data_dir / "customers.json", SERVICES["cms" if ids == "uuid4" else "profile"].rules)
    asyncio.run(store.open())
    return store


def test_a_missing_file_is_created_with_the_samples_in_the_seed_format(tmp_path):
    open_store(tmp_path)
    path = tmp_path / "customers.json"
    text = path.read_text(encoding="utf-8")
    document = json.loads(text)
    assert list(document) == [c["id"] for c in sample_customers()]
    assert document == {c["id"]: c for c in sample_customers()}
    assert text == json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def test_every_write_is_on_disk_when_acknowledged_and_the_previous_version_is_the_bak(tmp_path):
    store = open_store(tmp_path)
    path = tmp_path / "customers.json"
    before = path.read_bytes()
    created = json.loads(asyncio.run(store.create(dict(NEW_CUSTOMER))))
    on_disk = json.loads(path.read_bytes())
    assert on_disk[created["id"]] == created
    assert (tmp_path / "customers.json.bak").read_bytes() == before
    assert on_disk == {c["id"]: c for c in listed(store)}


def test_data_survives_a_restart_of_the_app(tmp_path):
    with build_client(tmp_path) as client:
        created = client.post("/api/customers/", json=NEW_CUSTOMER).json()
        client.put(f"/api/customers/{created['id']}", json={"status": "inactive"})
        client.delete("/api/customers/e20a1b70-67c9-4fb4-9f6d-56ba97a87c14")
        before = client.get("/api/customers/").json()
    with build_client(tmp_path) as client:
        assert client.get("/api/customers/").json() == before
        assert client.get(f"/api/customers/{created['id']}").json()["status"] == "inactive"


def listed(store: FileStore) -> list[dict]:
    return [json.loads(part) for part in asyncio.run(store.list())]


async def _in_batches(parts: list[bytes], size: int) -> AsyncIterator[list[bytes]]:
    for start in range(0, len(parts), size):
        yield parts[start : start + size]


@pytest.mark.parametrize("count", [0, 1, 2, 5000])
@pytest.mark.parametrize("held", [True, False], ids=["in-memory", "streamed"])
def test_the_served_list_is_one_json_array_small_or_streamed(count, held):
    """Over 1 MiB, or read in batches (PostgreSQL), the array is sent in slices built from the
    records: it must still be one array, with its length when it is known."""
    parts = [json.dumps({"n": n, "pad": "x" * 300}).encode() for n in range(count)]
    response = json_array_response(Listing(parts) if held else Streamed(_in_batches(parts, 1000)))
    with TestClient(Starlette(routes=[Route("/", lambda _request: response)])) as client:
        served = client.get("/")
    assert [item["n"] for item in served.json()] == list(range(count))
    if held:
        assert int(served.headers["content-length"]) == len(served.content)
    else:
        assert "content-length" not in served.headers  # chunked: its size is not known before the end


def test_an_empty_store_is_an_empty_object_and_stays_empty_after_restart(tmp_path):
    store = open_store(tmp_path)
    for customer in sample_customers():
        asyncio.run(store.delete(customer["id"]))
    assert (tmp_path / "customers.json").read_text() == "{}\n"
    assert asyncio.run(open_store(tmp_path).count()) == 0


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"\x00" * 64, b"[]", b'{"a": 1}', b'{"a": {"id": "b"}}', b"not json at all"],
    ids=["empty", "truncated", "nul-filled", "array", "not-records", "wrong-id", "text"],
)
def test_a_corrupt_file_is_refused_and_left_untouched(tmp_path, content):
    path = tmp_path / "customers.json"
    path.write_bytes(content)
    with pytest.raises(CorruptDataFile) as raised:
        open_store(tmp_path)
    assert str(path) in str(raised.value)
    assert "restore" in str(raised.value)
    assert path.read_bytes() == content


def test_a_damaged_file_is_moved_aside_and_the_bak_restored_loudly(tmp_path, caplog):
    store = open_store(tmp_path)
    asyncio.run(store.create(dict(NEW_CUSTOMER)))
    path = tmp_path / "customers.json"
    good = (tmp_path / "customers.json.bak").read_bytes()
    path.write_bytes(b"\x00" * 100)
    recovered = open_store(tmp_path)
    assert asyncio.run(recovered.count()) == 2
    assert path.read_bytes() == good
    [aside] = tmp_path.glob("customers.json.corrupt-*")
    assert aside.read_bytes() == b"\x00" * 100
    assert "RECOVERED" in caplog.text
    assert aside.name in caplog.text


def test_a_damaged_file_with_a_damaged_bak_is_refused_naming_both(tmp_path):
    path = tmp_path / "customers.json"
    path.write_bytes(b"{")
    (tmp_path / "customers.json.bak").write_bytes(b"")
    with pytest.raises(CorruptDataFile) as raised:
        open_store(tmp_path)
    message = str(raised.value)
    assert "customers.json.bak is unusable too" in message
    assert "customers.json (1 bytes)" in message
    assert path.read_bytes() == b"{"
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_leftover_temp_files_are_removed_at_start(tmp_path):
    open_store(tmp_path)
    leftover = tmp_path / "customers.json.tmp-99999"
    leftover.write_bytes(b'{"half": ')
    open_store(tmp_path)
    assert not leftover.exists()


def test_another_process_writes_are_seen_by_readers(tmp_path):
    reader = open_store(tmp_path)
    writer = open_store(tmp_path)
    created = json.loads(asyncio.run(writer.create(dict(NEW_CUSTOMER))))
    assert json.loads(asyncio.run(reader.get(created["id"]))) == created
    assert asyncio.run(reader.count()) == 3


def test_member_by_member_reading_agrees_with_a_whole_parse(tmp_path):
    store = open_store(tmp_path)
    tricky = 'Zoë "quoted", with a comma,\n  "and": a separator lookalike'
    asyncio.run(store.create({**NEW_CUSTOMER, "name": tricky}))
    data = (tmp_path / "customers.json").read_bytes()
    members = _members(data, {})
    assert members == _records(_document(data))
    assert b"".join(render(members)) == data
    again = _members(data, members)  # what another process's write left unchanged is not parsed again
    assert all(again[key] is members[key] for key in members)


@pytest.mark.parametrize("indent", [None, 4, 1])
def test_a_valid_file_in_another_layout_is_read_whole(tmp_path, indent):
    customers = {c["id"]: c for c in sample_customers()}
    (tmp_path / "customers.json").write_text(json.dumps(customers, indent=indent))
    assert listed(open_store(tmp_path)) == list(customers.values())


def create_in_another_process(data_dir: Path) -> dict:
    """A customer created by another process's store over the same data file."""
    script = (
        "import asyncio, json, sys\n"
        "from pathlib import Path\n"
        "from cms_mock.services import SERVICES\n"
        "from cms_mock.stores.file import FileStore\n"
        "async def main():\n"
        "    store = FileStore(Path(sys.argv[1]) / 'customers.json', SERVICES['cms'].rules)\n"
        "    await store.open()\n"
        "    sys.stdout.buffer.write(await store.create(json.loads(sys.argv[2])))\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(data_dir), json.dumps(NEW_CUSTOMER)], capture_output=True, check=True, timeout=60)
    return json.loads(done.stdout)


def test_a_read_after_another_process_wrote_re_reads_the_file_off_the_event_loop(tmp_path, blockbuster):
    """The whole file is read and parsed in a thread (``blockbuster`` fails the test otherwise)."""
    with build_client(tmp_path) as client:
        created = create_in_another_process(tmp_path)
        assert client.get(f"/api/customers/{created['id']}").json() == created
        assert client.get("/health").json()["total_customers"] == 3


def test_readers_that_find_the_file_changed_share_one_re_read_in_a_thread(tmp_path, monkeypatch):
    store = open_store(tmp_path)
    created = create_in_another_process(tmp_path)
    reads: list[int] = []
    load = datafile.load

    def counted_load(*args, **kwargs):
        reads.append(threading.get_ident())
        return load(*args, **kwargs)

    monkeypatch.setattr(datafile, "load", counted_load)

    async def readers() -> list[bytes]:
        return await asyncio.gather(*(store.get(created["id"]) for _ in range(5)))

    assert [json.loads(body) for body in asyncio.run(readers())] == [created] * 5
    assert len(reads) == 1
    assert reads[0] != threading.get_ident()  # asyncio.run's loop runs in this thread
