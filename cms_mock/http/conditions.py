"""Conditional requests (RFC 9110, section 13): a record's strong ``ETag``, ``If-None-Match`` on
reads (304), ``If-Match`` on changes (412), the check made by the store in the same atomic step
as the change it guards, so of two clients updating with the same tag, one wins.

The tag is a hash of the record's JSON exactly as served: it changes whenever the record does
(``updated_at`` moves on every change), and every backend computes it from the same bytes. A
list's tag is the hash of its body likewise (see ``list_etag``).
"""

from __future__ import annotations

import hashlib

from cms_mock.errors import PreconditionFailed
from cms_mock.stores import Check, Listing


def etag(body: bytes) -> str:
    return f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def list_etag(listing: Listing, total: int | None) -> str:
    """A list's tag: the hash of its body (as a record's), and for a page also its ``X-Total-Count``,
    which can change while the page does not."""
    return f'"{listing.digest}"' if total is None else f'"{listing.digest}-{total}"'


def not_modified(tag: str | None, if_none_match: str | None) -> bool:
    """Whether ``If-None-Match`` names this version (weak comparison: ``W/`` is ignored) or is
    ``*`` (there is a version: also for an answer without a tag)."""
    if if_none_match is None:
        return False
    tags = [tag.removeprefix("W/") for tag in _tags(if_none_match)]
    return "*" in tags or tag in tags


def if_match(header: str | None) -> Check | None:
    """The store's check for ``If-Match``: the record exists and is a version it names (strong
    comparison: a weak tag never matches), or ``*`` (any version)."""
    if header is None:
        return None
    tags = _tags(header)

    def check(current: bytes | None) -> None:
        if current is None:
            raise PreconditionFailed("If-Match failed: no record has this id")
        if "*" not in tags and etag(current) not in tags:
            raise PreconditionFailed(f"If-Match failed: the record has changed; its ETag is now {etag(current)}")

    return check
