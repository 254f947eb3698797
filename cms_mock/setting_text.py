"""A setting's text and its value, both ways: an environment variable's text read into the value
(refused, naming the variable, when it cannot be one), and a value written as that text.

Each row of ``settings.TABLE`` names its reader; the refusals that flags can earn too (a port
out of range, too many workers) are ``Settings.check``'s, made once the flags are applied.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from pathlib import Path


class SettingsError(ValueError):
    """A setting has a value the service cannot use; the message names the variable."""


def read_text(name: str, raw: str) -> str:
    return raw


def read_lowercase(name: str, raw: str) -> str:
    return raw.lower()


def read_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name} must be true or false, not {raw!r}")


def _read_int(name: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, not {value}")
    return value


def read_int(minimum: int) -> Callable[[str, str], int]:
    """A reader of whole numbers from ``minimum`` up."""
    return functools.partial(_read_int, minimum=minimum)


def read_seconds(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not 0 < value <= 3600:
        raise SettingsError(f"{name} must be more than 0 and at most 3600 seconds, not {raw}")
    return value


def read_directory(name: str, raw: str) -> Path:
    """A directory: an empty name would be the working directory, which nobody means."""
    if not raw.strip():
        raise SettingsError(f"{name} is empty: unset it for ./data, or name a directory")
    return Path(raw)


def read_blank_as_unset(name: str, raw: str) -> str | None:
    """The value without its surrounding blanks; a blank one is unset (None)."""
    return raw.strip() or None


def read_path_blank_as_unset(name: str, raw: str) -> Path | None:
    return Path(raw) if raw.strip() else None


_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s?#]+", re.IGNORECASE)


def parse_origins(raw: str) -> tuple[str, ...]:
    """Read ``CORS_ORIGINS`` as the seed writes it (a JSON list) or comma-separated.

    Each origin is ``*`` or ``scheme://host[:port]``: anything else (a JSON object, a list
    separated by spaces, a path) would match no browser's ``Origin`` and fail silently.
    """
    text = raw.strip()
    if text.startswith(("[", "{", '"')):
        try:
            origins = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"CORS_ORIGINS is not a valid JSON list: {exc}") from None
        if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
            raise SettingsError("CORS_ORIGINS must be a JSON list of strings")
    else:
        origins = text.split(",")
    cleaned = tuple(o.strip() for o in origins if o.strip())
    for origin in cleaned:
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise SettingsError(f"CORS_ORIGINS: {origin!r} is not an origin (* or scheme://host[:port]; separate several with commas)")
    return cleaned


def read_origins(name: str, raw: str) -> tuple[str, ...]:
    return parse_origins(raw)


def written(value: object) -> str:
    """A value as its environment variable gives it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return json.dumps(list(value))
    return str(value)


def shown(value: object) -> str:
    """A default as one would write it in the environment variable, as a person reads it."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Path) and not value.is_absolute():
        return f"./{value.as_posix()}"
    return written(value)
