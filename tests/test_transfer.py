"""``cms-mock export`` and ``cms-mock import``: the JSON file to PostgreSQL and back is two
commands, the seed's format both ways, and a bad file changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cms_mock import transfer
from cms_mock.services import SERVICES
from cms_mock.settings import flag_help
from tests.support.contract import Contract
from tests.support.data import NEW_CUSTOMER, NEW_PROFILE, sample_customers
from tests.support.postgres import Cluster
from tests.support.servers import LiveServer

pytestmark = pytest.mark.live


def cms_mock(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "cms_mock", *args], capture_output=True, input=stdin, env={**os.environ, **(env or {})}, timeout=120)


def test_from_the_file_to_postgresql_and_back_is_two_commands_each_way(tmp_path: Path, postgres: Cluster):
    with LiveServer(tmp_path / "data").start() as server:
        created = httpx.post(f"{server.url}/api/customers", json=NEW_CUSTOMER).json()
    original = (tmp_path / "data" / "customers.json").read_bytes()

    exported = cms_mock("export", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out.json"))
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "out.json").read_bytes() == original  # the seed's format, byte for byte

    url = postgres.database()
    loaded = cms_mock("import", str(tmp_path / "out.json"), "--database-url", url, "--database-timeout", "60")
    assert loaded.returncode == 0, loaded.stderr
    assert b"imported 3 cms records" in loaded.stderr
    back = cms_mock("export", env={"DATABASE_URL": url})
    assert back.returncode == 0, back.stderr
    assert back.stdout == original

    fresh = tmp_path / "fresh"
    again = cms_mock("import", "-", "--data-dir", str(fresh), stdin=back.stdout)
    assert again.returncode == 0, again.stderr
    assert (fresh / "customers.json").read_bytes() == original
    with LiveServer(tmp_path / "served", env={"DATABASE_URL": url}).start() as served:
        assert httpx.get(f"{served.url}/api/customers/{created['id']}").json() == created


def test_profiles_keep_their_integer_ids_and_new_ones_go_on_after_them(tmp_path: Path, postgres: Cluster):
    url = postgres.database()
    stamp = "2024-01-01T00:00:00.000000"
    records = {"12": {"id": 12, **NEW_PROFILE, "created_at": stamp, "updated_at": stamp}}
    (tmp_path / "profiles.json").write_text(json.dumps(records, indent=2))
    assert cms_mock("import", str(tmp_path / "profiles.json"), "--service", "profile", "--database-url", url).returncode == 0
    with LiveServer(tmp_path / "data", "serve", "profile", env={"DATABASE_URL": url}).start() as server:
        assert httpx.get(f"{server.url}/customers").json() == list(records.values())
        made = httpx.post(f"{server.url}/customers", json=NEW_PROFILE)
        assert made.json()["id"] == 13


def test_an_invalid_file_is_refused_whole_listing_every_problem_and_nothing_changes(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "customers.json").write_text(json.dumps({c["id"]: c for c in sample_customers()}, indent=2))
    before = (data / "customers.json").read_bytes()
    good = json.loads(before)
    first = next(iter(good))
    bad = {**good, first: {**good[first], "email": "not an address"}, "x": {"id": "y", "name": "only"}}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    refused = cms_mock("import", str(tmp_path / "bad.json"), "--data-dir", str(data))
    assert refused.returncode == 1
    message = refused.stderr.decode()
    assert "nothing was imported" in message
    assert f"record {first!r}: email:" in message
    assert "record 'x': email: field required" in message
    assert "record 'x': its id 'y' is not its key" in message
    assert (data / "customers.json").read_bytes() == before


def test_a_file_that_is_not_records_is_refused(tmp_path: Path):
    empty = "the file is empty: expected a JSON object of records keyed by id"
    for content, said in ((b"[]", "not an object"), (b"{", "not a JSON document"), (b'{"a": 1, "a": 2}', "duplicate key"), (b"", empty), (b" \n", empty)):
        (tmp_path / "f.json").write_bytes(content)
        refused = cms_mock("import", str(tmp_path / "f.json"), "--data-dir", str(tmp_path / "data"))
        assert refused.returncode == 1
        assert said in refused.stderr.decode()
        assert "field required" not in refused.stderr.decode()


@pytest.mark.parametrize("command", [["export"], ["import", "f.json"]])
def test_a_database_timeout_without_a_database_is_refused_naming_the_flags(tmp_path: Path, command: list[str]):
    """As ``cms-mock serve`` refuses it: a flag that would be ignored is an error, and nothing is read or written."""
    (tmp_path / "f.json").write_text("{}")
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "cms_mock", *command, "--database-timeout", "3"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"usage: cms-mock {command[0]}")
    assert f"cms-mock {command[0]}: error: --database-timeout has no meaning without a database: give --database-url (or DATABASE_URL)" in result.stderr
    assert not (tmp_path / "data").exists()


def test_each_command_states_the_database_timeout_it_uses():
    """An import is one long change, so its own default; an export reads as a request does."""
    helps = {name: " ".join(cms_mock(name, "--help").stdout.decode().split()) for name in ("export", "import")}  # argparse wraps the help
    assert flag_help("--database-timeout", SERVICES.values()) in helps["export"]
    assert f"(default {transfer._IMPORT_TIMEOUT:g}; DATABASE_TIMEOUT is for requests)" in helps["import"]
    assert flag_help("--database-timeout", SERVICES.values()) not in helps["import"]
    for name in ("--data-dir", "--database-url"):
        assert all(flag_help(name, SERVICES.values()) in text for text in helps.values())


def test_an_import_beside_a_running_service_is_seen_by_it_at_once(tmp_path: Path):
    with LiveServer(tmp_path / "data").start() as server:
        only = {"id": "only-one", **NEW_CUSTOMER, "created_at": "2024-01-01T00:00:00.000000", "updated_at": "2024-01-01T00:00:00.000000"}
        (tmp_path / "one.json").write_text(json.dumps({"only-one": only}))
        assert cms_mock("import", str(tmp_path / "one.json"), "--data-dir", str(tmp_path / "data")).returncode == 0
        assert httpx.get(f"{server.url}/api/customers").json() == [only]


def test_an_export_changes_nothing_and_refuses_a_store_that_is_not_there(tmp_path: Path, postgres: Cluster):
    missing = cms_mock("export", "--data-dir", str(tmp_path / "typo"))
    assert missing.returncode == 3
    assert b"there is no data file at" in missing.stderr
    assert not (tmp_path / "typo").exists()
    empty = postgres.database()
    refused = cms_mock("export", "--database-url", empty)
    assert refused.returncode == 3
    assert b"no cms-mock schema" in refused.stderr
    assert not postgres.fetch("SELECT 1 FROM pg_tables WHERE schemaname = 'public'", empty.rsplit("/", 1)[1])


def test_ids_the_api_could_not_reach_are_refused(tmp_path: Path):
    stamp = "2024-01-01T00:00:00.000000"
    profiles = {str(2**63): {"id": 2**63, **NEW_PROFILE, "created_at": stamp, "updated_at": stamp}}
    (tmp_path / "p.json").write_text(json.dumps(profiles))
    refused = cms_mock("import", str(tmp_path / "p.json"), "--service", "profile", "--data-dir", str(tmp_path / "data"))
    assert refused.returncode == 1
    assert f"record '{2**63}': id: must be an integer from 1 to {2**53 - 1}" in refused.stderr.decode()
    assert not (tmp_path / "data" / "profiles.json").exists()
    customers = {"a/b": {"id": "a/b", **NEW_CUSTOMER, "created_at": stamp, "updated_at": stamp}}
    (tmp_path / "c.json").write_text(json.dumps(customers))
    refused = cms_mock("import", str(tmp_path / "c.json"), "--data-dir", str(tmp_path / "data"))
    assert "record 'a/b': id: must be 1 to 256 characters, none of them '/' or a control character" in refused.stderr.decode()


def test_timestamps_that_are_no_real_time_out_of_order_or_without_room_are_refused_naming_each(tmp_path: Path):
    """Each matches the pattern; a client reading it with ``datetime.fromisoformat`` (as the
    spec advises) would crash, or see it change backwards."""
    stamp = "2024-01-01T00:00:00.000000"
    odd = {
        "c1": {"id": "c1", **NEW_CUSTOMER, "created_at": "2026-02-30T25:61:61.000000", "updated_at": "0000-00-00T00:00:00.000000"},
        "c2": {"id": "c2", **NEW_CUSTOMER, "created_at": stamp, "updated_at": "2023-12-31T23:59:59.999999"},
        "c3": {"id": "c3", **NEW_CUSTOMER, "created_at": stamp, "updated_at": "9999-12-31T23:59:59.999999"},
        "c4": {"id": "c4", **NEW_CUSTOMER, "created_at": stamp, "updated_at": "2026-02-28T24:00:00.000000"},
    }
    data = tmp_path / "data"
    assert cms_mock("import", "-", "--data-dir", str(data), stdin=json.dumps({}).encode()).returncode == 0
    before = (data / "customers.json").read_bytes()
    (tmp_path / "odd.json").write_text(json.dumps(odd))
    refused = cms_mock("import", str(tmp_path / "odd.json"), "--data-dir", str(data))
    assert refused.returncode == 1
    assert refused.stderr.decode().splitlines() == [
        "cms-mock import: 5 problems, nothing was imported:",
        "record 'c1': created_at: is not a real time: day is out of range for month",
        "record 'c1': updated_at: is not a real time: year 0 is out of range",
        "record 'c2': updated_at: must not be before created_at (2024-01-01T00:00:00.000000)",
        "record 'c3': updated_at: is the last time there is (9999-12-31T23:59:59.999999): updated_at must have room to move forward",
        "record 'c4': updated_at: is not a real time: hour must be in 0..23",
    ]
    assert (data / "customers.json").read_bytes() == before


def test_updated_at_only_moves_forward_and_a_record_at_the_last_instant_cannot_change(tmp_path: Path):
    future = {"id": "f", **NEW_CUSTOMER, "created_at": "2024-01-01T00:00:00.000000", "updated_at": "3000-01-01T00:00:00.000000"}
    edge = {"id": "e", **NEW_CUSTOMER, "created_at": "2024-01-01T00:00:00.000000", "updated_at": "9999-12-31T23:59:59.999998"}
    (tmp_path / "f.json").write_text(json.dumps({"f": future, "e": edge}))
    assert cms_mock("import", str(tmp_path / "f.json"), "--data-dir", str(tmp_path / "data")).returncode == 0
    with LiveServer(tmp_path / "data").start() as server:
        assert httpx.put(f"{server.url}/api/customers/f", json={}).json()["updated_at"] == "3000-01-01T00:00:00.000001"
        last = httpx.put(f"{server.url}/api/customers/e", json={}).json()
        assert last["updated_at"] == "9999-12-31T23:59:59.999999"
        refused = httpx.put(f"{server.url}/api/customers/e", json={"name": "Never"})
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["msg"].startswith("Customer with ID e cannot change: its updated_at is the last time there is")
        assert httpx.get(f"{server.url}/api/customers/e").json() == last


@pytest.mark.parametrize("store", ["file", "postgres"])
def test_a_profile_at_the_largest_id_imports_and_a_create_after_it_is_refused_so_the_export_imports_again(tmp_path: Path, store: str, request):
    stamp = "2024-01-01T00:00:00.000000"
    largest = {"id": 2**53 - 1, **NEW_PROFILE, "created_at": stamp, "updated_at": stamp}
    (tmp_path / "p.json").write_text(json.dumps({str(largest["id"]): largest}))
    where = ["--database-url", request.getfixturevalue("postgres").database()] if store == "postgres" else ["--data-dir", str(tmp_path / "data")]
    assert cms_mock("import", str(tmp_path / "p.json"), "--service", "profile", *where).returncode == 0
    with LiveServer(tmp_path / "data", "serve", "profile", env={"DATABASE_URL": where[1]} if store == "postgres" else None).start() as server:
        refused = httpx.post(f"{server.url}/customers", json=NEW_PROFILE)
        assert refused.status_code == 422
        words = f"every id from 1 to {2**53 - 1} (2^53 - 1, the largest exact in every JSON client) has been given out"
        assert refused.json() == {"error": f"No id is left to give: {words}; nothing was stored"}
        assert not Contract("profile").violations("POST", "/customers", refused)
        assert httpx.get(f"{server.url}/customers").json() == [largest]
    exported = cms_mock("export", "--service", "profile", *where)
    assert exported.returncode == 0, exported.stderr
    again = cms_mock("import", "-", "--service", "profile", "--data-dir", str(tmp_path / "again"), stdin=exported.stdout)
    assert again.returncode == 0, again.stderr
