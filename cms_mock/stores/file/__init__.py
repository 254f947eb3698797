"""The JSON-file store (the default): every record in memory, every change on disk before it
is acknowledged.

Records live in memory as JSON bytes, twice: compact (served as is by GET) and as the
pretty-printed fragment of the data file, so a write joins fragments instead of
re-serialising every record. Changes are queued and committed in groups by one writer task:
concurrent writes share one file replace and one set of fsyncs. Readers only ever see
committed data, so a write that fails leaves memory exactly as the file is.

Several processes may share one data directory: a commit holds an exclusive ``flock`` on a
permanent lock file, re-reads the data file first if another process replaced it, and
readers re-read it when its identity changed, so every process reads its own and every
other process's acknowledged writes.

The event loop only ever ``stat``s the file: waiting for the lock, reading and parsing the
whole file, writing and syncing it all run in a thread.

``store``: ``FileStore``, reads and writes; ``mirror``: the records in memory, and catching up
with the file; ``writer``: the group commit; ``lock``: the lock file; ``snapshots``; ``health``.
"""

from cms_mock.stores.file.store import FileStore

__all__ = ["FileStore"]
