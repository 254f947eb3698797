"""The data file on disk: its format, and how it is replaced without ever being half-written.

The file is one JSON object keyed by id, pretty-printed with two spaces, exactly the seed's
format. A new version is written to a temp file in the same directory and fsynced; the
current version becomes ``<name>.bak`` through a hard link (so a data file exists at every
moment); the temp file is renamed over the data file and the directory is fsynced. Only then
does the caller acknowledge the write.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from cms_mock.errors import CorruptDataFile
from cms_mock.stores.records import dump

logger = logging.getLogger(__name__)

RecordBytes = tuple[bytes, bytes]
"""A record as (compact JSON, its pretty-printed fragment of the data file)."""

Signature = tuple[int, int, int]
"""(inode, size, mtime in ns): changes whenever any process replaces the file."""

_IOV_MAX = os.sysconf("SC_IOV_MAX")  # buffers per writev call


def encode(record: dict[str, Any], id_field: str = "id") -> RecordBytes:
    """Both serialised forms of a record; the fragment is its ``"<id>": {...}`` member of the file
    (a slice: a copy of the part kept, like ``dump``'s). ``id_field``: the field holding its id."""
    key = str(record[id_field])
    return dump(record), orjson.dumps({key: record}, option=orjson.OPT_INDENT_2)[2:-2]


def render(records: dict[str, RecordBytes]) -> list[bytes]:
    """The file's content as the pieces to write one after another: no copy of the whole file."""
    if not records:
        return [b"{}\n"]
    pieces = [b",\n"] * (2 * len(records) + 1)
    pieces[0], pieces[-1] = b"{\n", b"\n}\n"
    pieces[1::2] = [fragment for _, fragment in records.values()]
    return pieces


def parse(data: bytes, known: dict[str, RecordBytes] | None = None, id_field: str = "id") -> dict[str, RecordBytes]:
    """Read a data file's bytes, refusing anything that is not an object of records keyed by
    their ``id_field``.

    ``known``: records read before; a member whose text has not changed is taken from there.
    """
    records = _members(data, known or {}, id_field)
    return records if records is not None else _records(_document(data), id_field)


_MEMBER_SEPARATOR = b',\n  "'


def _members(data: bytes, known: dict[str, RecordBytes], id_field: str = "id") -> dict[str, RecordBytes] | None:
    """The records of a file in the layout ``render`` writes, read member by member.

    Parsing the whole document first would hold every record twice at start-up, and another
    process's write would cost a parse of every record, not only of those it changed. The
    separator cannot occur inside a string (JSON strings hold no raw newline) nor inside a
    record (its lines are indented deeper). None when the file has another layout or a
    duplicate id: the caller parses it whole.
    """
    if not (data.startswith(b'{\n  "') and data.endswith(b"\n}\n")):
        return None
    records = {}
    for index, part in enumerate(data[2:-3].split(_MEMBER_SEPARATOR)):
        fragment = part if index == 0 else b'  "' + part
        key = fragment[3 : fragment.find(b'"', 3)].decode()  # ids hold no quote; a wrong guess only misses
        stored = known.get(key)
        if stored is not None and stored[1] == fragment and key not in records:
            records[key] = stored
            continue
        try:
            member = orjson.loads(b"{" + fragment + b"}")
        except orjson.JSONDecodeError:
            return None
        if len(member) != 1:
            return None
        [(key, record)] = member.items()
        if key in records or not isinstance(record, dict) or str(record.get(id_field)) != key:
            return None
        records[key] = (dump(record), fragment)
    return records


def _document(data: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError(f"the top level is a {type(document).__name__}, not an object keyed by id")
    return document


def _records(document: dict[str, Any], id_field: str = "id") -> dict[str, RecordBytes]:
    """Encode each record, dropping its parsed form as it goes: the peak is one copy, not two."""
    records = {}
    for key in list(document):
        record = document.pop(key)
        if not isinstance(record, dict) or str(record.get(id_field)) != key:
            raise ValueError(f"the member {key[:80]!r} is not a record whose {id_field} is its key")
        records[key] = encode(record, id_field)
    return records


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".bak")


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _temp_path(path: Path, kind: str) -> Path:
    return path.with_name(f"{path.name}.{kind}-{os.getpid()}")


def remove_temp_files(path: Path) -> list[Path]:
    """Delete what an interrupted write left behind; call it holding the lock, so no write is running."""
    leftovers = [*path.parent.glob(f"{path.name}.tmp-*"), *path.parent.glob(f"{path.name}.bak.tmp-*"), *path.parent.glob(f"{path.name}.next-id.tmp-*")]
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    return leftovers


def signature(path: Path) -> Signature | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def load(path: Path, known: dict[str, RecordBytes] | None = None, id_field: str = "id") -> dict[str, RecordBytes] | None:
    """The file's records, or None when there is no file (``known``, ``id_field``: see ``parse``)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return parse(data, known, id_field)
    except ValueError as exc:
        raise CorruptDataFile(path, str(exc)) from None


def load_or_recover(path: Path, id_field: str = "id") -> dict[str, RecordBytes] | None:
    """The file's records; if it is damaged, the ``.bak``'s, after moving the damage aside.

    The damaged file is kept as ``<name>.corrupt-<UTC time>`` and the data file exists at every
    moment, so a crash during recovery still finds a file that existed (never sample data).
    Raises ``CorruptDataFile`` when neither file is usable, leaving both untouched.
    """
    try:
        return load(path, id_field=id_field)
    except CorruptDataFile as damage:
        backup = backup_path(path)
        try:
            data = backup.read_bytes()
            records = parse(data, id_field=id_field)
        except (OSError, ValueError) as exc:
            found = ", ".join(f"{p.name} ({p.stat().st_size} bytes)" for p in sorted(path.parent.glob(f"{path.name}*")) if p.is_file())
            raise CorruptDataFile(path, f"{damage.reason}; the backup {backup.name} is unusable too ({exc}); files found: {found}") from None
        aside = path.with_name(f"{path.name}.corrupt-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S%fZ')}")
        temp = _temp_path(path, "tmp")
        _write_synced(temp, [data])
        _link_or_copy(path, aside)
        os.replace(temp, path)
        sync_directory(path.parent)
        logger.warning(
            "RECOVERED: %s was damaged (%s); it was moved to %s and the service starts from %s (%d records). Changes after that backup are lost.",
            path,
            damage.reason,
            aside.name,
            backup.name,
            len(records),
        )
        return records


class Unsynced(OSError):
    """The new content is in place (readers see it) but the directory could not be fsynced, so
    a power cut could still lose the rename. The write happened: it must not be answered as failed."""

    def __init__(self, cause: OSError, new_signature: Signature | None) -> None:
        super().__init__(cause.errno, f"the data directory could not be synced after a write: {cause.strerror or cause}")
        self.signature = new_signature


def replace(path: Path, records: dict[str, RecordBytes]) -> Signature | None:
    """Durably replace the file's content; returns the new file's signature.

    Raises ``OSError`` when nothing changed on disk, ``Unsynced`` when the change is in place
    but its durability is not certain.
    """
    temp = _temp_path(path, "tmp")
    try:
        _write_synced(temp, render(records))
        _backup(path)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    try:
        sync_directory(path.parent)
    except OSError as exc:
        raise Unsynced(exc, signature(path)) from exc
    return signature(path)


def write_small(path: Path, data: bytes) -> None:
    """Durably replace a small sidecar file (temp, fsync, rename, directory fsync)."""
    with writing(path) as handle:
        handle.write(data)


@contextlib.contextmanager
def writing(path: Path) -> Iterator[IO[bytes]]:
    """A file to write that replaces ``path`` durably when the block ends, and never if it
    fails: readers see the old content or the whole new one (no ``.bak``: for sidecars, snapshots
    and exports). Its temp file is this call's alone, so two writers of one path never mix."""
    temp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(temp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    sync_directory(path.parent)


def ids_path(path: Path) -> Path:
    """The sidecar holding the next integer id: never lower than any id ever given out."""
    return path.with_name(path.name + ".next-id")


def _write_synced(path: Path, pieces: list[bytes]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for start in range(0, len(pieces), _IOV_MAX):
            batch = pieces[start : start + _IOV_MAX]
            written = os.writev(fd, batch)
            if written < sum(map(len, batch)):  # a short write: finish this batch piece by piece
                view = memoryview(b"".join(batch))[written:]
                while view:
                    view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _backup(path: Path) -> None:
    """Make the current file the ``.bak``, atomically, without a moment in which either is missing."""
    if not path.exists():
        return
    temp = _temp_path(backup_path(path), "tmp")
    temp.unlink(missing_ok=True)
    _link_or_copy(path, temp)
    os.replace(temp, backup_path(path))


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # file systems without hard links
        shutil.copyfile(source, target)


def sync_directory(directory: Path) -> None:
    """Make a rename, creation or deletion in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
