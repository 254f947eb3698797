"""The PostgreSQL store (``DATABASE_URL``): one durable state for any number of instances.

Each service has its own table; a record is a row ``(seq, id, body)``: ``seq`` keeps creation
order (the list's order), ``body`` is the record's compact JSON exactly as answered (``json``
keeps the text as written, key order included; ``jsonb`` would reorder the keys). Nothing is
cached: every read asks the database, so every instance sees every other's acknowledged
writes at once. Integer ids come from a sequence, which never gives a value twice.

The database being down is a state, not a crash: every call that needs it answers 503 with
the reason within ``timeout`` seconds (the whole call, not each step), and the pool connects
again when it is back.

``store``: ``PostgresStore``, reads and writes; ``schema``: the versioned schema, the tables,
columns and indexes; ``sql``: a ``Query`` as SQL; ``connections``: the pool and each call's
connection; ``failures``: the database's failures as 503s.
"""

from cms_mock.stores.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
