"""Tie freshly normalized entries back to what the store already holds for the same feed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from ..models import Entry
from .identity import entry_id, remap_changed_guid


def reconcile_identities(entries: Iterable[Entry], previous_identities: Mapping[str, str]) -> list[Entry]:
    """Return the entries with a known URL under a new guid mapped back to their stored identity.

    ``previous_identities`` maps canonical URL -> identity of entries already stored for the feed.
    This is the post-hoc form of ``normalize_feed(previous_identities=...)``, for pipelines that
    normalize in worker processes and only learn the stored state in the single writer.
    """
    reconciled: dict[str, Entry] = {}
    for entry in entries:
        entry = reconcile_identity(entry, previous_identities)
        reconciled.setdefault(entry.id, entry)
    return list(reconciled.values())


def reconcile_identity(entry: Entry, previous_identities: Mapping[str, str]) -> Entry:
    """Return one entry under its stored identity when its URL is known under another guid, else as is."""
    stored = (
        None if "url_missing" in entry.flags else remap_changed_guid(entry.identity, entry.url, previous_identities)
    )
    if stored is None:
        return entry
    return dataclasses.replace(
        entry,
        identity=stored,
        id=entry_id(entry.feed_key, stored),
        flags=(*entry.flags, "guid_changed"),
    )
