"""Settings: one immutable object, built by the caller and handed to the app factory, and the
table of how each is given (``TABLE``), which every list of them is made from.

The environment is passed in as a mapping (never read behind the caller's back) so tests
build settings from a dict instead of patching ``os.environ``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol

from cms_mock import setting_text
from cms_mock.setting_text import SettingsError as SettingsError  # the settings' error, named here for their readers

MIN_HEAD_BYTES = 1024
"""A request line and a few headers: a smaller limit would refuse ordinary requests."""
WORKERS_PER_CORE = 4
MAX_WORKERS = WORKERS_PER_CORE * (os.cpu_count() or 1)
"""More workers than this only compete for the cores (each holds every record in memory)."""
MAX_JOURNAL = 100_000
"""Journal entries are up to about 200 KiB each (two bodies of 64 KiB in their JSON form, and
the headers): a bound on what the journal can hold, on disk or in the database."""


class ServiceFacts(Protocol):
    """What the table's text says of a service. Settings imports nothing of ours, so whoever knows
    the services (the command line, the documentation's hook) passes them in."""

    @property
    def key(self) -> str: ...
    @property
    def default_port(self) -> int: ...
    @property
    def data_file(self) -> str: ...


def _service_words(services: Iterable[ServiceFacts]) -> dict[str, str]:
    """What a row's ``{services}``, ``{ports}`` and ``{data_files}`` stand for."""
    served = list(services)
    return {
        "services": " or ".join(entry.key for entry in served),
        "ports": ", ".join(f"{entry.default_port} ({entry.key})" for entry in served),
        "data_files": ", ".join(entry.data_file for entry in served),
    }


@dataclasses.dataclass(frozen=True)
class Setting:
    """One row of ``TABLE``: how a setting is given, what it is when it is not, and what it does."""

    variable: str | None
    """The environment variable (None for a setting that is only a flag)."""
    flag: str | None
    """The ``cms-mock`` flag that overrides it (None: only the environment sets it)."""
    field: str
    """The ``Settings`` field it sets, whose default the row shows."""
    meaning: str
    """What it does; ``{services}`` and ``{data_files}`` are filled from the services served."""
    unset: str = "unset"
    """The default shown when the field's is None (``{ports}``: each service's own port)."""
    read: Callable[[str, str], object] = setting_text.read_text
    """The field's value from the variable's text and name (named in a refusal); None means unset."""
    flag_type: Callable[[str], object] = str
    """The field's value from the flag's text (a flag of a true-or-false field takes none)."""
    empty_notice: str | None = None
    """What the log says of the variable set but empty, then unset (None: read like any other value)."""

    @property
    def _field_default(self) -> object:
        return next(field.default for field in dataclasses.fields(Settings) if field.name == self.field)

    @property
    def default(self) -> str:
        """The ``Settings`` field's default, written as the environment variable takes it."""
        value = self._field_default
        return self.unset if value is None else setting_text.shown(value)

    def described(self, services: Iterable[ServiceFacts]) -> tuple[str, str]:
        """The default and the meaning, with what they say of ``services`` filled in."""
        words = _service_words(services)
        return self.default.format(**words), self.meaning.format(**words)

    def help(self, services: Iterable[ServiceFacts]) -> str:
        """The flag's line in ``cms-mock --help``."""
        default, meaning = self.described(services)
        where = f"; environment variable {self.variable}" if self.variable else ""
        return f"{meaning} (default {default}{where})"

    def add_flag(self, parser: argparse.ArgumentParser, services: Iterable[ServiceFacts], help: str | None = None) -> None:
        """The row's flag on ``parser``, with its help (``help`` for a command that means another
        default); not given, it is None, so the environment's value stands. The flag of a
        true-or-false field takes no value: it turns the field's default around."""
        default = self._field_default
        text = help or self.help(services)
        if isinstance(default, bool):
            parser.add_argument(str(self.flag), dest=self.field, action="store_false" if default else "store_true", default=None, help=text)
        else:
            parser.add_argument(str(self.flag), dest=self.field, type=self.flag_type, help=text)

    def value(self, env: Mapping[str, str]) -> tuple[object, str | None]:
        """The field's value in ``env`` (None: unset there) and what the log should say of it."""
        raw = env.get(self.variable) if self.variable else None
        if raw == "" and self.empty_notice:
            return None, self.empty_notice
        return (None if raw is None else self.read(str(self.variable), raw)), None


TABLE = (
    Setting("HOST", "--host", "host", "interface to listen on"),
    Setting(
        "PORT",
        "--port",
        "port",
        "port of the one service served; 'serve all' takes one --<service>-port flag per service instead",
        unset="{ports}",
        read=setting_text.read_int(0),
        flag_type=int,
    ),
    Setting(
        "DEBUG",
        "--debug",
        "debug",
        "every response validated against the spec (a mismatch is a 500), and debug logging unless LOG_LEVEL is set",
        read=setting_text.read_bool,
    ),
    Setting(
        "CORS_ORIGINS",
        "--cors-origins",
        "cors_origins",
        'allowed origins, as a JSON list (["http://a.test"]) or comma-separated',
        read=setting_text.read_origins,
        flag_type=setting_text.parse_origins,
    ),
    Setting(
        "DATA_DIR",
        "--data-dir",
        "data_dir",
        "directory of the JSON data files, one per service ({data_files})",
        read=setting_text.read_directory,
        flag_type=Path,
    ),
    Setting(
        "DATABASE_URL",
        "--database-url",
        "database_url",
        "postgresql://user:password@host:port/dbname: keep records in PostgreSQL instead of DATA_DIR",
        read=setting_text.read_blank_as_unset,
    ),
    Setting(
        "DATABASE_TIMEOUT",
        "--database-timeout",
        "database_timeout",
        "seconds a request waits for the database (to connect, or for one statement) before it answers 503",
        read=setting_text.read_seconds,
        flag_type=float,
    ),
    Setting(
        "LOG_LEVEL",
        "--log-level",
        "log_level",
        "critical, error, warning, info or debug; info logs one line per request (time, method, path, status, duration)",
        read=setting_text.read_lowercase,
    ),
    Setting(
        "WORKERS",
        "--workers",
        "workers",
        f"uvicorn worker processes sharing one data directory (at most {WORKERS_PER_CORE} per core)",
        read=setting_text.read_int(1),
        flag_type=int,
    ),
    Setting("MAX_BODY_BYTES", None, "max_body_bytes", "larger request bodies get a 413", read=setting_text.read_int(1)),
    Setting(
        "HEAD_TIMEOUT",
        None,
        "head_timeout",
        "seconds a connection has to send a complete request head (idle keep-alive time included); then 408, or closed if it sent nothing",
        read=setting_text.read_seconds,
    ),
    Setting(
        "MAX_HEAD_BYTES",
        None,
        "max_head_bytes",
        f"a larger request head (request line and headers) gets a 431, refused before it is read whole; at least {MIN_HEAD_BYTES}",
        read=setting_text.read_int(MIN_HEAD_BYTES),
    ),
    Setting(
        "MAX_CONNECTIONS",
        None,
        "max_connections",
        "open connections per process; more are closed as soon as they are accepted",
        read=setting_text.read_int(1),
    ),
    Setting(
        "API_KEY",
        None,
        "api_key",
        "when set, writes to the operations the spec secures, and every /__admin call, need this value in X-API-Key; empty means unset",
        empty_notice="API_KEY is set but empty: taken as unset, so no request needs a key",
    ),
    Setting(
        "API_KEY_READS",
        None,
        "api_key_reads",
        "with API_KEY, reads (GET, HEAD) of the secured operations need the key too; /, /health and /docs stay open",
        read=setting_text.read_bool,
    ),
    Setting(
        "ADMIN_API",
        "--no-admin",
        "admin_api",
        "the control plane under /__admin; off (false, or the flag), every /__admin path is a 404",
        read=setting_text.read_bool,
    ),
    Setting(
        "FIXTURES",
        "--fixtures",
        "fixtures",
        "a file of records in the data file's format: what POST /__admin/reset puts back instead of the samples",
        read=setting_text.read_path_blank_as_unset,
        flag_type=Path,
    ),
    Setting(
        "JOURNAL_SIZE",
        "--journal-size",
        "journal_size",
        f"requests the journal (GET /__admin/requests) keeps, the most recent; 0 turns it off (coverage still counts); at most {MAX_JOURNAL:,}",
        read=setting_text.read_int(0),
        flag_type=int,
    ),
    Setting(
        "METRICS",
        "--no-metrics",
        "metrics",
        "GET /metrics (Prometheus) and the figures behind it; off (false, or the flag), nothing is counted and the path is a 404",
        read=setting_text.read_bool,
    ),
    Setting("SERVICE", None, "service", "which contract 'uvicorn cms_mock.app:app' serves ({services}); the cms-mock command takes it as 'serve NAME'"),
    Setting(
        "SPEC",
        "--spec",
        "spec",
        "an OpenAPI 3.0 or 3.1 file (YAML or JSON) to serve instead of a built-in service: its resources become stateful, validated mocks",
        read=setting_text.read_path_blank_as_unset,
        flag_type=Path,
    ),
    Setting(None, "--in-memory", "in_memory", "keep records in memory only and write nothing (one worker, no DATABASE_URL)"),
    Setting(
        None,
        "--fd",
        "fd",
        "serve on this listening socket, a file descriptor the starting process passed down, instead of binding HOST:PORT (one service, one worker)",
        flag_type=int,
    ),
)
"""Every setting, once: how it is read, ``cms-mock --help``, the documentation's configuration
page (``settings_markdown``) and the pytest plugin (which keeps a consumer's values of them from
the servers it starts) are made from it."""

PROCESS_VARIABLES = ("CMS_MOCK_STATE_DIR", "PROMETHEUS_MULTIPROC_DIR", "CMS_MOCK_SUPERVISOR_PID")
"""Not settings: what ``cms-mock --workers N`` tells the workers it starts (the directories they
share, its own pid). A value inherited from elsewhere would make a server share another's state."""


def variables() -> tuple[str, ...]:
    """Every environment variable cms-mock reads: the settings' and the ones it sets for its workers."""
    return tuple(setting.variable for setting in TABLE if setting.variable) + PROCESS_VARIABLES


def row(flag: str) -> Setting:
    """The setting a flag gives."""
    return next(setting for setting in TABLE if setting.flag == flag)


def flag_help(flag: str, services: Iterable[ServiceFacts]) -> str:
    """The help of a setting's flag, from its row."""
    return row(flag).help(services)


def flag_values(args: argparse.Namespace) -> dict[str, object]:
    """What the settings' flags of a parsed command line say, by field (None: not given)."""
    return {setting.field: getattr(args, setting.field, None) for setting in TABLE if setting.flag}


def settings_markdown(services: Iterable[ServiceFacts]) -> str:
    """``TABLE`` as the Markdown table the documentation's configuration page shows."""
    served = list(services)
    rows = ["| Variable | Flag | Default | Meaning |", "|---|---|---|---|"]
    for setting in TABLE:
        default, meaning = setting.described(served)
        cells = [f"`{value}`" if value else "" for value in (setting.variable, setting.flag, default)]
        rows.append(f"| {' | '.join(cells)} | {meaning} |")
    return "\n".join(rows) + "\n"


def database_url(environ: Mapping[str, str]) -> str | None:
    """``DATABASE_URL`` as the settings read it: blank is unset (the file store)."""
    return setting_text.read_blank_as_unset("DATABASE_URL", environ.get("DATABASE_URL", ""))


_DATABASE_URL = re.compile(r"postgres(ql)?://", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything that varies between runs of the service; each field's row of ``TABLE`` says what
    it does. ``port=None`` means the service's own default port (3001 for the CMS, 8000 for profiles)."""

    service: str = "cms"
    host: str = "0.0.0.0"
    port: int | None = None
    debug: bool = False
    cors_origins: tuple[str, ...] = ("*",)
    data_dir: Path = Path("data")
    in_memory: bool = False
    log_level: str = "info"
    workers: int = 1
    max_body_bytes: int = 1024 * 1024
    head_timeout: float = 10.0
    max_head_bytes: int = 64 * 1024
    max_connections: int = 2048
    api_key: str | None = None
    api_key_reads: bool = False
    database_url: str | None = None
    database_timeout: float = 5.0
    admin_api: bool = True
    fixtures: Path | None = None
    spec: Path | None = None
    journal_size: int = 1000
    metrics: bool = True
    fd: int | None = None
    """A listening socket passed down by the starting process (``--fd``): served as it is, so the
    port is never free between the choice of it and the server's start."""
    notices: tuple[str, ...] = dataclasses.field(default=(), compare=False)
    """What reading the environment decided that the log should say (an empty ``API_KEY``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        object.__setattr__(self, "cors_origins", tuple(self.cors_origins))
        for field in ("fixtures", "spec"):
            if getattr(self, field) is not None:
                object.__setattr__(self, field, Path(getattr(self, field)))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from environment variables, then apply explicit overrides (CLI flags)."""
        values: dict[str, object] = {}
        notices = []
        for setting in TABLE:
            value, notice = setting.value(os.environ if environ is None else environ)
            if value is not None:
                values[setting.field] = value
            if notice:
                notices.append(notice)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("debug") and "log_level" not in values:
            values["log_level"] = "debug"
        settings = cls(**values, notices=tuple(notices))  # type: ignore[arg-type]
        settings.check()
        return settings

    def check_data_dir(self) -> None:
        """Make ``data_dir`` if needed and refuse it unless this process can write there; a
        start that could not keep a single write should stop here, with the reason."""
        if self.in_memory or self.database_url:
            return
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SettingsError(f"DATA_DIR {str(self.data_dir)!r} cannot be made: {exc.strerror}") from None
        if not os.access(self.data_dir, os.W_OK | os.X_OK):
            raise SettingsError(f"DATA_DIR {str(self.data_dir)!r} is not writable by this user")

    def check(self) -> None:
        """Refuse combinations that cannot work, before anything starts."""
        if self.log_level not in {"critical", "error", "warning", "info", "debug"}:
            raise SettingsError(f"LOG_LEVEL must be one of critical, error, warning, info, debug, not {self.log_level!r}")
        if self.port is not None and not 0 <= self.port <= 65535:
            raise SettingsError(f"PORT must be between 0 and 65535, not {self.port}")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise SettingsError(f"WORKERS must be between 1 and {MAX_WORKERS} ({WORKERS_PER_CORE} per core), not {self.workers}")
        if not 0 <= self.journal_size <= MAX_JOURNAL:
            raise SettingsError(f"JOURNAL_SIZE must be between 0 and {MAX_JOURNAL:,}, not {self.journal_size}")
        if self.api_key is not None and not self.api_key.strip():
            raise SettingsError("API_KEY is blank: no client could send it; unset it or give a key")
        if self.in_memory and self.workers > 1:
            raise SettingsError("--in-memory cannot be combined with several workers: each would hold its own data")
        if self.database_url is not None:
            if self.in_memory:
                raise SettingsError("--in-memory cannot be combined with DATABASE_URL: choose where records live")
            if not _DATABASE_URL.match(self.database_url):
                raise SettingsError("DATABASE_URL must be postgresql://user:password@host:port/dbname (or postgres://...)")

    def environment(self) -> dict[str, str]:
        """The settings as the environment variables that give them, for processes that build
        theirs from the environment (the workers of ``--workers``). A field that is None is
        left to the environment, where its variable is unset or blank already."""
        given = {setting.variable: getattr(self, setting.field) for setting in TABLE if setting.variable}
        return {variable: setting_text.written(value) for variable, value in given.items() if variable and value is not None}

    @property
    def database_shown(self) -> str | None:
        """``database_url`` without its password, for logs and messages."""
        return None if self.database_url is None else re.sub(r"(://[^:/@]*:).*@", r"\1***@", self.database_url)
