"""Entry identity: a stable id from the guid, the canonical link, or a hash of title and date."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from ..models import ParsedEntry
from .text import clean_line

# Identities longer than this (some feeds put the whole body in <guid>) are stored as a hash.
_MAX_IDENTITY = 512


def entry_id(feed_key: str, identity: str) -> str:
    """Return the stable public id of an entry: a hash of its feed key and identity."""
    return hashlib.sha256(f"{feed_key}\x00{identity}".encode()).hexdigest()[:20]


def content_identity(*parts: str | None) -> str:
    """Return an identity made from a hash of the given strings (title, date, text)."""
    digest = hashlib.sha256("\x00".join(part or "" for part in parts).encode()).hexdigest()[:32]
    return f"hash:{digest}"


def guid_identity(guid: str | None) -> str | None:
    """Return the identity a guid gives, or None when the entry has no usable guid."""
    if not guid or not guid.strip():
        return None
    guid = guid.strip()
    return guid if len(guid) <= _MAX_IDENTITY else content_identity(guid)


def repeated_guids(entries: Sequence[ParsedEntry]) -> frozenset[str]:
    """Return the guids that one document gives to different items (different link or title)."""
    # Some CMS templates print the same guid (the feed URL, "0", the site name) on every item;
    # trusting it would collapse the whole feed into one entry.
    signatures: dict[str, set[tuple[str, str]]] = {}
    for entry in entries:
        if entry.guid and entry.guid.strip():
            signature = ((entry.link or "").strip(), clean_line(entry.title))
            signatures.setdefault(entry.guid.strip(), set()).add(signature)
    return frozenset(guid for guid, seen in signatures.items() if len(seen) > 1)


def remap_changed_guid(identity: str, url: str, previous_identities: Mapping[str, str] | None) -> str | None:
    """Return the stored identity to keep when a known URL arrives under a new guid, else None."""
    # Feeds that mint a new guid on every fetch (a timestamp, a session id) would otherwise add
    # the same article again each poll; the canonical URL ties it back to the stored entry.
    if not previous_identities:
        return None
    stored = previous_identities.get(url)
    if stored is None or stored == identity:
        return None
    return stored
