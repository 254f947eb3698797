"""``cms-mock export`` and ``cms-mock import``: a service's records out of, and into, whichever
store is configured, in the seed's file format (one object keyed by id, pretty-printed).

Moving from the JSON file to PostgreSQL is ``cms-mock export --out f.json`` then
``DATABASE_URL=... cms-mock import f.json``, and back the same way. An import is checked whole
against the spec's record schema before anything changes, and is then one change of the store:
all of it or none of it, safe beside a running service.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from cms_mock.backends import make_store, where
from cms_mock.errors import StoreRefused, StoreUnavailable
from cms_mock.record_files import InvalidRecords, read_records
from cms_mock.services import SERVICES, Service, service
from cms_mock.settings import Settings, SettingsError, database_url, flag_values, row
from cms_mock.stores import RecordStore, datafile


def _add_store_flags(parser: argparse.ArgumentParser, timeout_help: str | None) -> None:
    """The flags that say where records live, as serving takes them; ``timeout_help`` for a
    command whose ``--database-timeout`` is not a request's."""
    row("--data-dir").add_flag(parser, SERVICES.values())
    row("--database-url").add_flag(parser, SERVICES.values())
    row("--database-timeout").add_flag(parser, SERVICES.values(), timeout_help)


def meaningless_store_flag(args: argparse.Namespace) -> str | None:
    """A store flag given that the command would ignore: refused, so nobody believes it took effect."""
    if args.database_timeout is not None and args.database_url is None and database_url(os.environ) is None:
        return "--database-timeout has no meaning without a database: give --database-url (or DATABASE_URL)"
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cms-mock", description="Move a service's records out of or into the configured store.")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write every record in the seed's file format")
    export.add_argument("--out", type=Path, help="the file to write, atomically (default: standard output)")
    load = commands.add_parser("import", help="replace every record with a file's, all or nothing")
    load.add_argument("file", help="a file in the seed's format, or - for standard input")
    import_timeout = f"seconds the import may take in the database, connecting to commit (default {_IMPORT_TIMEOUT:g}; DATABASE_TIMEOUT is for requests)"
    for command, timeout_help in ((export, None), (load, import_timeout)):
        command.add_argument("--service", choices=list(SERVICES), default="cms", help="whose records (default cms)")
        _add_store_flags(command, timeout_help)
        command.set_defaults(command_parser=command)
    return parser


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    meaningless = meaningless_store_flag(args)
    if meaningless:
        args.command_parser.error(meaningless)
    try:
        flags = flag_values(args)
        if args.command == "import" and flags["database_timeout"] is None:
            flags["database_timeout"] = _IMPORT_TIMEOUT
        settings = Settings.from_env(None, **{**flags, "service": args.service})
        chosen = service(settings.service)
        if args.command == "export":
            asyncio.run(_export(settings, chosen, args.out))
        else:
            settings.check_data_dir()
            records = read_records(chosen, sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes())
            asyncio.run(_import(settings, chosen, records))
    except (SettingsError, StoreRefused, StoreUnavailable, InvalidRecords, OSError) as exc:
        print(f"cms-mock {args.command}: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, InvalidRecords) else 2 if isinstance(exc, SettingsError) else 3
    return 0


_IMPORT_TIMEOUT = 600.0
"""Seconds an import may take in the database (a million records is one long statement);
``--database-timeout`` (not ``DATABASE_TIMEOUT``, which is for requests) sets another."""


async def _opened(settings: Settings, chosen: Service, create: bool) -> RecordStore:
    store = make_store(settings, chosen)
    await store.open(create=create)
    return store


async def _export(settings: Settings, chosen: Service, out: Path | None) -> None:
    """Reads the store as it is: a missing or damaged one is refused, never made or repaired."""
    store = await _opened(settings, chosen, create=False)
    try:
        records = await store.list()
        with _destination(out) as handle:
            handle.write(b"{")
            separator = b"\n"
            async for batch in records.batches():
                for body in batch:
                    handle.write(separator + datafile.encode(orjson.loads(body), chosen.rules.id_field)[1])
                    separator = b",\n"
            handle.write(b"}\n" if separator == b"\n" else b"\n}\n")
    finally:
        await store.close()
    print(f"exported the {chosen.key} records from {where(settings, chosen)}", file=sys.stderr)


async def _import(settings: Settings, chosen: Service, records: list[dict[str, Any]]) -> None:
    store = await _opened(settings, chosen, create=True)
    try:
        await store.replace_all(records)
    finally:
        await store.close()
    print(f"imported {len(records)} {chosen.key} records into {where(settings, chosen)}", file=sys.stderr)


@contextlib.contextmanager
def _destination(out: Path | None) -> Iterator[IO[bytes]]:
    if out is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
    else:
        with datafile.writing(out) as handle:
            yield handle
