"""The command line and uvicorn: real processes, real ports, real signals."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cms_mock import cli
from cms_mock.services import SERVICES
from cms_mock.settings import TABLE, Settings, flag_values
from tests.support.data import NEW_CUSTOMER
from tests.support.ports import free_port
from tests.support.servers import LiveServer, wait_healthy

pytestmark = pytest.mark.live

ROOT = Path(__file__).parent.parent


def run_until_healthy(command: list[str], env: dict[str, str], url: str, cwd: Path = ROOT) -> subprocess.Popen:
    process = subprocess.Popen(command, env={**os.environ, **env}, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(url, process)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    return process


def stop(process: subprocess.Popen) -> tuple[int, str]:
    os.killpg(process.pid, signal.SIGTERM)
    output, _ = process.communicate(timeout=15)
    return process.returncode, output.decode(errors="replace")


def test_console_script_with_no_arguments_reads_the_environment(tmp_path):
    port = free_port()
    script = str(Path(sys.executable).parent / "cms-mock")
    process = run_until_healthy([script], {"PORT": str(port), "HOST": "127.0.0.1", "DATA_DIR": str(tmp_path)}, f"http://127.0.0.1:{port}")
    assert httpx.get(f"http://127.0.0.1:{port}/").json()["name"] == "CMS Mock Service"
    code, _ = stop(process)
    assert code == 0
    assert (tmp_path / "customers.json").exists()


def test_uvicorn_import_string_works(tmp_path):
    port = free_port()
    process = run_until_healthy(
        [sys.executable, "-m", "uvicorn", "cms_mock.app:app", "--host", "127.0.0.1", "--port", str(port)],
        {"DATA_DIR": str(tmp_path)},
        f"http://127.0.0.1:{port}",
    )
    assert httpx.post(f"http://127.0.0.1:{port}/api/customers/", json=NEW_CUSTOMER).status_code == 201
    stop(process)
    assert len(json.loads((tmp_path / "customers.json").read_text())) == 3


def test_one_log_line_per_request_with_method_path_status_and_duration(tmp_path):
    server = LiveServer(tmp_path / "data", env={"LOG_LEVEL": "info"}).start()
    httpx.get(f"{server.url}/api/customers/nope")
    server.stop()
    lines = [line for line in server.output().splitlines() if "cms_mock.access" in line]
    assert any(" GET /api/customers/nope 404 " in line and line.endswith("ms") for line in lines)
    assert all(line[:4].isdigit() for line in lines)  # starts with a timestamp


def test_a_corrupt_data_file_stops_the_start_with_a_message_naming_it(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "customers.json").write_text('{"truncated": ')
    process = subprocess.run(
        [sys.executable, "-m", "cms_mock", "--port", str(free_port()), "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=30, cwd=ROOT
    )
    assert process.returncode == 3  # uvicorn's "startup failed"
    assert "Task exception was never retrieved" not in process.stderr
    assert f"{data_dir / 'customers.json'} is not a valid data file" in process.stderr
    assert (data_dir / "customers.json").read_text() == '{"truncated": '


def test_sigterm_stops_the_server_cleanly_and_keeps_the_data(tmp_path):
    server = LiveServer(tmp_path / "data").start()
    created = httpx.post(f"{server.url}/api/customers/", json=NEW_CUSTOMER).json()
    assert server.stop(signal.SIGTERM) == 0
    server.start()
    assert httpx.get(f"{server.url}/api/customers/{created['id']}").json() == created
    server.stop()


def test_bad_settings_exit_2_with_the_reason(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cms_mock"], env={**os.environ, "PORT": "abc"}, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "PORT must be an integer" in result.stderr


def test_unknown_command_is_refused():
    result = subprocess.run([sys.executable, "-m", "cms_mock", "serve", "billing"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "serve profile" in result.stderr


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the git checkout")
def test_running_the_service_in_a_fresh_clone_leaves_git_status_clean(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    port = free_port()
    process = run_until_healthy([sys.executable, "-m", "cms_mock", "--port", str(port), "--host", "127.0.0.1"], {}, f"http://127.0.0.1:{port}", cwd=clone)
    httpx.post(f"http://127.0.0.1:{port}/api/customers/", json=NEW_CUSTOMER)
    stop(process)
    assert (clone / "data" / "customers.json").exists()
    assert (clone / "data" / "customers.json.bak").exists()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True)
    assert status.stdout == ""


def test_serve_profile_on_its_port(tmp_path):
    server = LiveServer(tmp_path / "data", "serve", "profile").start()
    assert httpx.get(f"{server.url}/customers/1").json()["id"] == 1
    assert server.stop() == 0
    assert (tmp_path / "data" / "profiles.json").exists()


def test_serve_all_runs_both_services_in_one_process(tmp_path):
    cms_port, profile_port = free_port(), free_port()
    command = [
        sys.executable,
        "-m",
        "cms_mock",
        "serve",
        "all",
        "--host",
        "127.0.0.1",
        "--cms-port",
        str(cms_port),
        "--profile-port",
        str(profile_port),
        "--data-dir",
        str(tmp_path),
    ]
    process = run_until_healthy(command, {}, f"http://127.0.0.1:{cms_port}")
    wait_healthy(f"http://127.0.0.1:{profile_port}", process)
    assert httpx.get(f"http://127.0.0.1:{cms_port}/health").json()["service"] == "CMS Mock Service"
    assert httpx.get(f"http://127.0.0.1:{profile_port}/health").json()["service"] == "Customer Profile Service"
    code, _ = stop(process)
    assert code == 0
    assert {p.name for p in tmp_path.glob("*.json")} == {"customers.json", "profiles.json"}


def test_help_prints_usage_and_no_warning():
    """A start prints no warning: connexion's starlette test client warns unless httpx2 (a dependency) is installed."""
    result = subprocess.run([sys.executable, "-m", "cms_mock", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: cms-mock")
    assert result.stderr == ""


def test_an_unusable_data_dir_exits_2_with_the_reason_and_no_traceback(tmp_path):
    (tmp_path / "file").write_text("")
    result = subprocess.run([sys.executable, "-m", "cms_mock", "--data-dir", str(tmp_path / "file" / "data")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr == f"cms-mock: DATA_DIR {str(tmp_path / 'file' / 'data')!r} cannot be made: Not a directory\n"


def test_control_characters_in_a_path_cannot_forge_a_log_line(tmp_path):
    with LiveServer(tmp_path / "data", env={"LOG_LEVEL": "info"}).start() as server:
        httpx.get(f"{server.url}/x%0A2026-01-01 00:00:00,000 INFO cms_mock.access: GET /forged 200 1.00ms%1B[31m")
    lines = server.output().splitlines()
    assert not any(line.startswith("2026-01-01") for line in lines)
    assert any("GET /x\\x0a2026-01-01 00:00:00,000 INFO cms_mock.access: GET /forged 200 1.00ms\\x1b[31m 404" in line for line in lines)


def test_the_uvicorn_app_attribute_is_built_once_and_leaves_a_hosts_logging_alone(tmp_path, monkeypatch):
    import logging

    import cms_mock.app

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    cms_mock.app._app_from_environment.cache_clear()
    handler = logging.NullHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        assert cms_mock.app.app is cms_mock.app.app
        assert handler in root.handlers
    finally:
        root.removeHandler(handler)
        cms_mock.app._app_from_environment.cache_clear()


REFUSED = [
    (["serve", "all", "--port", "4105"], "--port has no meaning with 'serve all': use --cms-port / --profile-port"),
    (["serve", "profile", "--cms-port", "4105"], "--cms-port has no meaning with 'serve profile': use --port"),
    (["--profile-port", "4105"], "--profile-port has no meaning with 'serve cms': use --port"),
    (["--in-memory", "--data-dir", "elsewhere"], "--data-dir has no meaning with --in-memory"),
    (["--database-timeout", "3"], "--database-timeout has no meaning without a database"),
]


@pytest.mark.parametrize(("args", "message"), REFUSED, ids=[" ".join(r[0]) for r in REFUSED])
def test_a_flag_the_command_would_ignore_is_refused_naming_the_right_one(tmp_path, args, message):
    """Nothing starts (the default ports stay free) and the message says which flag to use."""
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    result = subprocess.run([sys.executable, "-m", "cms_mock", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: cms-mock")
    assert f"cms-mock: error: {message}" in result.stderr
    assert not (tmp_path / "data").exists()


def test_help_lists_every_setting_from_the_table_and_no_flag_that_does_not_exist():
    result = subprocess.run([sys.executable, "-m", "cms_mock", "serve", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # argparse wraps the flags' help
    for setting in TABLE:
        default, meaning = setting.described(SERVICES.values())
        if setting.variable == "SERVICE":  # for 'uvicorn cms_mock.app:app'; this command takes 'serve NAME'
            assert "SERVICE" not in text
        elif setting.flag is None:
            assert f"{setting.variable} {meaning} (default {default})" in text
        else:
            assert setting.help(SERVICES.values()) in text, setting
    offered = set(re.findall(r"--[a-z][a-z-]*", result.stdout.split("options:")[1].split("\n\n")[0]))
    named = set(re.findall(r"--[a-z][a-z-]*", result.stdout))
    assert named <= offered, named - offered


def test_serve_all_refuses_a_port_from_the_environment_naming_the_flags(tmp_path):
    """PORT would be ignored as --port is: each service of 'serve all' has its own flag."""
    env = {**os.environ, "PORT": "4105"}
    result = subprocess.run([sys.executable, "-m", "cms_mock", "serve", "all"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "cms-mock: error: the environment's PORT has no meaning with 'serve all': unset it, and use --cms-port / --profile-port" in result.stderr
    assert not (tmp_path / "data").exists()


def test_a_blank_database_url_is_no_database_for_the_timeout_flag_as_for_the_settings(tmp_path):
    env = {**os.environ, "DATABASE_URL": "  "}
    result = subprocess.run([sys.executable, "-m", "cms_mock", "--database-timeout", "3"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--database-timeout has no meaning without a database" in result.stderr


def test_a_listening_socket_passed_down_is_served(tmp_path):
    """``--fd``: the port is bound before the server starts, so nobody else can take it meanwhile."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        command = [sys.executable, "-m", "cms_mock", "--fd", str(listener.fileno()), "--data-dir", str(tmp_path)]
        process = subprocess.Popen(command, pass_fds=(listener.fileno(),), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_healthy(url, process)
        except BaseException:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        assert httpx.post(f"{url}/api/customers/", json=NEW_CUSTOMER).status_code == 201
        code, output = stop(process)
    assert code == 0, output
    assert len(json.loads((tmp_path / "customers.json").read_text())) == 3


NOT_SERVABLE = [
    (["--fd", "0"], "cms-mock: --fd 0 is not an open socket: Socket operation on non-socket"),
    (["--fd", "{bound}"], "cms-mock: --fd {bound} is not a listening stream socket: bind it and listen before starting cms-mock"),
    (["--fd", "{datagram}"], "cms-mock: --fd {datagram} is not a listening stream socket"),
    (["--fd", "{listening}", "--workers", "2"], "cms-mock: --fd cannot be combined with several workers: one process serves the socket"),
    (["serve", "all", "--fd", "{listening}"], "cms-mock: error: --fd has no meaning with 'serve all': one socket serves one service"),
    (["--fd", "{listening}", "--port", "4105"], "cms-mock: error: --port has no meaning with --fd: the socket is bound already"),
]


@pytest.mark.parametrize(("args", "message"), NOT_SERVABLE, ids=[" ".join(case[0]) for case in NOT_SERVABLE])
def test_what_fd_cannot_serve_is_refused_before_anything_starts(tmp_path, args, message):
    with socket.socket() as bound, socket.socket(type=socket.SOCK_DGRAM) as datagram, socket.socket() as listening:
        bound.bind(("127.0.0.1", 0))
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        fds = {"bound": bound.fileno(), "datagram": datagram.fileno(), "listening": listening.fileno()}
        command = [sys.executable, "-m", "cms_mock", *(arg.format(**fds) for arg in args), "--data-dir", str(tmp_path / "data")]
        env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
        result = subprocess.run(command, env=env, pass_fds=tuple(fds.values()), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert message.format(**fds) in result.stderr
    assert not (tmp_path / "data").exists()


def test_each_flag_of_the_table_given_its_default_gives_the_default_and_a_switch_turns_it_around():
    """Each flag reads its value as its row says, as its environment variable does (``test_settings``)."""
    for setting in TABLE:
        default = getattr(Settings(), setting.field)
        if setting.flag is None or default is None:
            continue
        given = [setting.flag] if isinstance(default, bool) else [setting.flag, setting.default]
        value = flag_values(cli._parser().parse_args(given))[setting.field]
        assert value == (not default if isinstance(default, bool) else default), setting
