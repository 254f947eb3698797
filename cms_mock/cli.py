"""The ``cms-mock`` command: settings from the environment, overridden by flags, then uvicorn.

``cms-mock`` serves the CMS; ``cms-mock serve profile`` the profile service; ``cms-mock serve
all`` both, in one process, each on its own port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import uvicorn

from cms_mock import __version__, check, metrics, transfer
from cms_mock.app import check_store, create_app
from cms_mock.errors import StoreRefused
from cms_mock.http import protocol
from cms_mock.logs import configure_logging
from cms_mock.record_files import InvalidRecords, start_records
from cms_mock.services import SERVICES, served, service
from cms_mock.settings import TABLE, Settings, SettingsError, flag_values
from cms_mock.workers import STATE_DIR, SUPERVISOR


def _parser() -> argparse.ArgumentParser:
    # SERVICE is for 'uvicorn cms_mock.app:app': this command takes the service as a word
    only_variables = [(setting.variable, *setting.described(SERVICES.values())) for setting in TABLE if setting.flag is None and setting.variable != "SERVICE"]
    width = max(len(str(variable)) for variable, _, _ in only_variables)
    parser = argparse.ArgumentParser(
        prog="cms-mock",
        description="Contract-first, stateful mocks of the CMS (port 3001) and Customer Profile (port 8000) services.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(
            [
                "Each flag overrides the environment variable its help names. These settings have no flag: set them in the environment.",
                *(f"  {variable:<{width}}  {meaning} (default {default})" for variable, default, meaning in only_variables),
                "",
                "'cms-mock export --help' and 'cms-mock import --help' move records between stores;",
                "'cms-mock check --spec FILE' prints what cms-mock understands of a spec, without serving it.",
            ]
        ),
    )
    parser.add_argument("words", nargs="*", metavar=f"[serve] {{{','.join(SERVICES)},all}}", help="what to serve (default: cms)")
    for setting in TABLE:
        if setting.flag:
            setting.add_flag(parser, SERVICES.values())
    for entry in SERVICES.values():
        parser.add_argument(f"--{entry.key}-port", type=int, help=f"the {entry.key} port with 'serve all' (default {entry.default_port})")
    parser.add_argument("--version", action="version", version=f"cms-mock {__version__}")
    return parser


def _meaningless(args: argparse.Namespace, target: str) -> str | None:
    """A flag given that the command would ignore: refused, so nobody believes it took effect."""
    per_service = " / ".join(f"--{name}-port" for name in SERVICES)
    if target == "all" and args.port is not None:
        return f"--port has no meaning with 'serve all': use {per_service}"
    if target == "all" and "PORT" in os.environ:
        return f"the environment's PORT has no meaning with 'serve all': unset it, and use {per_service}"
    given = [name for name in SERVICES if getattr(args, f"{name}_port") is not None]
    if target != "all" and given:
        return f"--{given[0]}-port has no meaning with 'serve {target}': use --port ({per_service} are for 'serve all')"
    if args.fd is not None and target == "all":
        return "--fd has no meaning with 'serve all': one socket serves one service"
    bound = [flag for flag in ("host", "port") if getattr(args, flag) is not None]
    if args.fd is not None and bound:
        return f"--{bound[0]} has no meaning with --fd: the socket is bound already"
    if args.spec is not None and (target == "all" or args.words[-1:] == [target]):
        return f"--spec serves the spec it names: 'cms-mock serve --spec FILE', without '{target}'"
    if args.in_memory and args.data_dir is not None:
        return "--data-dir has no meaning with --in-memory: nothing is written"
    return transfer.meaningless_store_flag(args)


def _target(words: Sequence[str]) -> str:
    words = list(words)
    if words[:1] == ["serve"]:
        words = words[1:]
    if len(words) > 1 or (words and words[0] not in (*SERVICES, "all")):
        choices = ", ".join(f"'serve {name}'" for name in (*SERVICES, "all"))
        raise SettingsError(f"unknown command {' '.join(words)!r}: use {choices}, 'export' or 'import'")
    return words[0] if words else "cms"


def _listening(fd: int) -> socket.socket:
    """The socket ``--fd`` names, once it is known to be one a server can accept connections on."""
    try:
        sock = socket.socket(fileno=fd)
    except (OSError, ValueError) as exc:
        raise SettingsError(f"--fd {fd} is not an open socket: {getattr(exc, 'strerror', None) or exc}") from None
    if sock.type != socket.SOCK_STREAM or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()  # not ours to close
        raise SettingsError(f"--fd {fd} is not a listening stream socket: bind it and listen before starting cms-mock")
    return sock


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to ``_serve``, so several can share a process."""

    exit_code = 0
    inherited: list[socket.socket] | None = None
    """The socket of ``--fd``, served instead of binding HOST:PORT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().serve(sockets if sockets is not None else self.inherited)
        except SystemExit as exc:  # uvicorn exits 3 when an app cannot start; its log said why
            self.exit_code = int(exc.code or 0)


async def _serve(servers: list[_Server]) -> int:
    loop = asyncio.get_running_loop()

    def stop_all() -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_all)
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stop_all()
    await asyncio.gather(*tasks)
    return max(server.exit_code for server in servers)


def _port(settings: Settings) -> int:
    return settings.port if settings.port is not None else served(settings).default_port


def _config(settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=_port(settings),
        log_config=None,
        access_log=False,
        http=protocol.NAME,
        ws="none",  # no operation is a WebSocket: an upgrade request is an HTTP request like any other
        timeout_graceful_shutdown=10,
    )


def _settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Settings]:
    """The settings of each service to serve: the environment's, overridden by the flags."""
    target = _target(args.words)
    meaningless = _meaningless(args, target)
    if meaningless:
        parser.error(meaningless)
    flags = flag_values(args)
    if target != "all":
        return [Settings.from_env(None, **{**flags, "service": service(target).key})]
    ports = {name: getattr(args, f"{name}_port") for name in SERVICES}
    return [
        Settings.from_env(None, **{**flags, "service": entry.key, "port": entry.default_port if ports[entry.key] is None else ports[entry.key]})
        for entry in SERVICES.values()
    ]


def _supervise(first: Settings) -> int:
    """Serve ``first`` with ``first.workers`` uvicorn worker processes, which build their app from
    the environment this hands them (the settings, this process's pid, the directories they share)."""
    try:
        check_store(first)
    except StoreRefused as exc:
        print(f"cms-mock: refusing to start: {exc}", file=sys.stderr)
        return 3
    os.environ.update(first.environment(), **{SUPERVISOR: str(os.getpid())})
    with tempfile.TemporaryDirectory(prefix="cms-mock-shared-") as shared:
        # What the workers add up between them: the journal, coverage and fault rules
        # (state.local), and the metrics (prometheus-client's multiprocess mode).
        os.environ[STATE_DIR] = str(Path(shared, "state"))
        os.environ[metrics.MULTIPROCESS] = str(Path(shared, "metrics"))
        Path(shared, "metrics").mkdir()
        uvicorn.run(
            "cms_mock.app:app", host=first.host, port=_port(first), workers=first.workers, log_config=None, access_log=False, http=protocol.NAME, ws="none"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["export"], ["import"]):
        return transfer.main(argv)
    if argv[:1] == ["check"]:
        return check.main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        all_settings = _settings(parser, args)
        first = all_settings[0]
        if first.fd is not None and first.workers > 1:
            raise SettingsError("--fd cannot be combined with several workers: one process serves the socket")
        inherited = None if first.fd is None else [_listening(first.fd)]
        for settings in all_settings:
            settings.check_data_dir()
            start_records(served(settings), settings.fixtures)
    except (SettingsError, InvalidRecords) as exc:
        print(f"cms-mock: {exc}", file=sys.stderr)
        return 2
    configure_logging(first.log_level)
    protocol.limit(first.head_timeout, first.max_head_bytes, first.max_connections)
    if first.workers > 1 and len(all_settings) > 1:
        print("cms-mock: --workers serves one service at a time", file=sys.stderr)
        return 2
    if first.workers > 1:
        return _supervise(first)
    servers = [_Server(_config(settings)) for settings in all_settings]
    servers[0].inherited = inherited
    return asyncio.run(_serve(servers))
