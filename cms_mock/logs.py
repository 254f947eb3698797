"""Logging: one format, and request data made safe to log.

A path or method comes from the client: ``%0A`` in a path would otherwise write a forged line
into the access log, and an ANSI escape would recolour a terminal. Everything a request
supplies is logged through ``printable``.
"""

from __future__ import annotations

import logging
import re

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """``text`` with every control character written as an escape (``\\x0a``), so it stays on one line."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text)


def configure_logging(level: str, *, force: bool = True) -> None:
    """Our format at ``level``. ``force=False`` leaves a host's logging alone when it has any."""
    if force or not logging.getLogger().handlers:
        logging.basicConfig(format=LOG_FORMAT, level=level.upper(), force=True)
