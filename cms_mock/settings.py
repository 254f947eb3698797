"""Settings: one immutable object, built by the caller and handed to the app factory.

The environment is passed in as a mapping (never read behind the caller's back) so tests
build settings from a dict instead of patching ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path


class SettingsError(ValueError):
    """A setting has a value the service cannot use; the message names the variable."""


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}")


def _parse_int(name: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, not {value}")
    return value


def parse_origins(raw: str) -> tuple[str, ...]:
    """Read ``CORS_ORIGINS`` as the seed writes it (a JSON list) or comma-separated."""
    text = raw.strip()
    if text.startswith("["):
        try:
            origins = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"CORS_ORIGINS is not a valid JSON list: {exc}") from None
        if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
            raise SettingsError("CORS_ORIGINS must be a JSON list of strings")
    else:
        origins = text.split(",")
    return tuple(o.strip() for o in origins if o.strip())


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything that varies between runs of the service.

    ``port=None`` means the service's own default port (3001 for the CMS, 8000 for profiles).
    """

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
    api_key: str | None = None
    api_key_reads: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        object.__setattr__(self, "cors_origins", tuple(self.cors_origins))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from environment variables, then apply explicit overrides (CLI flags)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        if "SERVICE" in env:
            values["service"] = env["SERVICE"]
        if "HOST" in env:
            values["host"] = env["HOST"]
        if "PORT" in env:
            values["port"] = _parse_int("PORT", env["PORT"], 0)
        if "DEBUG" in env:
            values["debug"] = _parse_bool("DEBUG", env["DEBUG"])
        if "CORS_ORIGINS" in env:
            values["cors_origins"] = parse_origins(env["CORS_ORIGINS"])
        if "DATA_DIR" in env:
            values["data_dir"] = Path(env["DATA_DIR"])
        if "LOG_LEVEL" in env:
            values["log_level"] = env["LOG_LEVEL"].lower()
        if "WORKERS" in env:
            values["workers"] = _parse_int("WORKERS", env["WORKERS"], 1)
        if "MAX_BODY_BYTES" in env:
            values["max_body_bytes"] = _parse_int("MAX_BODY_BYTES", env["MAX_BODY_BYTES"], 1)
        if env.get("API_KEY"):
            values["api_key"] = env["API_KEY"]
        if "API_KEY_READS" in env:
            values["api_key_reads"] = _parse_bool("API_KEY_READS", env["API_KEY_READS"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("debug") and "log_level" not in values:
            values["log_level"] = "debug"
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse combinations that cannot work, before anything starts."""
        if self.service not in {"cms", "profile"}:
            raise SettingsError(f"SERVICE must be cms or profile, not {self.service!r}")
        if self.log_level not in {"critical", "error", "warning", "info", "debug"}:
            raise SettingsError(f"LOG_LEVEL must be one of critical, error, warning, info, debug, not {self.log_level!r}")
        if self.in_memory and self.workers > 1:
            raise SettingsError("--in-memory cannot be combined with several workers: each would hold its own data")
