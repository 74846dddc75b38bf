"""The entry half of the store: saving, reading and the change log the indexer consumes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from .hosts import display_title
from .models import Change, Entry, Image, Source
from .store_errors import database_errors
from .tables import _now, changes_table, content_hash, entries_table, entry_digests_table, feeds_table


@database_errors
class EntryStore:
    """Entries and the change log; mixed into Store, which provides the engine and the writer."""

    engine: Engine

    def _write(self) -> Any:
        raise NotImplementedError

    def _read(self) -> Any:
        raise NotImplementedError

    def save_entries(
        self,
        feed_id: int,
        entries: Iterable[Entry],
        *,
        seen_at: datetime | None = None,
        digests: Mapping[str, str] | None = None,
    ) -> tuple[int, int]:
        """Insert new entries and update changed ones in one transaction; return (new, updated).

        ``digests`` (item digest -> entry id), when given, replaces what the feed's last document
        held (see ``entry_digests``), in the same transaction.
        """
        entries = list(entries)
        if not entries and digests is None:
            return (0, 0)
        seen_at = seen_at or _now()
        new = updated = 0
        with self._write() as conn:
            if digests is not None:
                conn.execute(sa.delete(entry_digests_table).where(entry_digests_table.c.feed_id == feed_id))
                if digests:
                    conn.execute(
                        sa.insert(entry_digests_table),
                        [{"feed_id": feed_id, "digest": d, "entry_id": i} for d, i in digests.items()],
                    )
            if not entries:
                return (0, 0)
            existing: dict[str, Row[Any]] = {}
            ids = [e.id for e in entries]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for row in conn.execute(
                    sa.select(
                        entries_table.c.id,
                        entries_table.c.content_hash,
                        entries_table.c.published_at,
                        entries_table.c.first_seen_at,
                        entries_table.c.feed_id,
                    ).where(entries_table.c.id.in_(chunk))
                ):
                    existing[row.id] = row
            inserts: list[dict[str, Any]] = []
            change_rows: list[dict[str, Any]] = []
            for entry in entries:
                digest = content_hash(entry)
                old = existing.get(entry.id)
                if old is None:
                    inserts.append(self._entry_values(entry, feed_id, digest, seen_at, seen_at))
                    change_rows.append(_upsert_change(entry.id, seen_at, entry.fingerprint, entry.published_at))
                    new += 1
                elif old.content_hash != digest:
                    values = self._entry_values(entry, feed_id, digest, old.first_seen_at, seen_at)
                    if "date_missing" in entry.flags:
                        # The fallback date is "first seen": keep the first sighting, not this one.
                        values["published_at"] = old.published_at
                    del values["id"]
                    conn.execute(sa.update(entries_table).where(entries_table.c.id == entry.id).values(**values))
                    change_rows.append(_upsert_change(entry.id, seen_at, entry.fingerprint, values["published_at"]))
                    updated += 1
            if inserts:
                conn.execute(sa.insert(entries_table), inserts)
            if change_rows:
                conn.execute(sa.insert(changes_table), change_rows)
        return (new, updated)

    @staticmethod
    def _entry_values(
        entry: Entry, feed_id: int, digest: str, first_seen: datetime, changed_at: datetime
    ) -> dict[str, Any]:
        return {
            "id": entry.id,
            "feed_id": feed_id,
            "identity": entry.identity,
            "url": entry.url,
            "title": entry.title,
            "authors": json.dumps(list(entry.authors)),
            "published_at": entry.published_at,
            "updated_at": entry.updated_at,
            "first_seen_at": first_seen,
            "last_changed_at": changed_at,
            "summary": entry.summary,
            "content_html": entry.content_html,
            "text": entry.text,
            "image_url": entry.image.url if entry.image else None,
            "image_caption": entry.image.caption if entry.image else None,
            "tags": json.dumps(list(entry.tags)),
            "language": entry.language,
            "word_count": entry.word_count,
            "fingerprint": entry.fingerprint,
            "flags": json.dumps(list(entry.flags)),
            "content_hash": digest,
        }

    def entry_digests(self, feed_id: int) -> dict[str, str]:
        """Return item digest -> entry id for the items of the feed's last document still stored."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(entry_digests_table.c.digest, entry_digests_table.c.entry_id)
                .join(entries_table, entries_table.c.id == entry_digests_table.c.entry_id)
                .where(entry_digests_table.c.feed_id == feed_id)
            ).all()
        return {row.digest: row.entry_id for row in rows}

    def stored_identities(self, feed_id: int, limit: int = 2000) -> dict[str, str]:
        """Return canonical URL -> identity of the feed's most recently seen entries."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(entries_table.c.url, entries_table.c.identity)
                .where(entries_table.c.feed_id == feed_id)
                .order_by(entries_table.c.first_seen_at.desc())
                .limit(limit)
            ).all()
        identities: dict[str, str] = {}
        for row in reversed(rows):  # newest last, so it wins for a URL seen under several identities
            identities[row.url] = row.identity
        return identities

    def _entry_select(self) -> sa.Select[Any]:
        return sa.select(
            entries_table,
            feeds_table.c.key.label("feed_key"),
            feeds_table.c.url.label("feed_url"),
            feeds_table.c.config_title,
            feeds_table.c.doc_title,
            feeds_table.c.site_url,
        ).join(feeds_table, feeds_table.c.id == entries_table.c.feed_id)

    @staticmethod
    def _entry(row: Row[Any]) -> Entry:
        m = row._mapping
        return Entry(
            id=m["id"],
            feed_key=m["feed_key"],
            identity=m["identity"],
            url=m["url"],
            title=m["title"],
            authors=tuple(json.loads(m["authors"])),
            published_at=m["published_at"],
            updated_at=m["updated_at"],
            summary=m["summary"],
            content_html=m["content_html"],
            text=m["text"],
            image=Image(m["image_url"], m["image_caption"]) if m["image_url"] else None,
            tags=tuple(json.loads(m["tags"])),
            language=m["language"],
            word_count=m["word_count"],
            fingerprint=m["fingerprint"],
            source=Source(
                feed_url=m["feed_url"],
                title=display_title(m["config_title"], m["doc_title"], m["feed_url"]),
                site_url=m["site_url"],
            ),
            flags=tuple(json.loads(m["flags"])),
        )

    def get_entry(self, entry_id: str) -> Entry | None:
        """Return the entry with this id, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(self._entry_select().where(entries_table.c.id == entry_id)).first()
        return None if row is None else self._entry(row)

    def get_entries(self, entry_ids: Sequence[str]) -> dict[str, Entry]:
        """Return the entries with these ids that exist, by id."""
        found: dict[str, Entry] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(entry_ids), 500):
                chunk = list(entry_ids[start : start + 500])
                for row in conn.execute(self._entry_select().where(entries_table.c.id.in_(chunk))):
                    entry = self._entry(row)
                    found[entry.id] = entry
        return found

    def entry_leads(self, entry_ids: Sequence[str], chars: int) -> dict[str, tuple[str, str]]:
        """Return entry id -> (title, the first ``chars`` characters of its summary, else of its text)
        for the entries with these ids that exist: what related coverage compares, without the rest of the row."""
        e = entries_table.c
        found: dict[str, tuple[str, str]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(entry_ids), 500):
                chunk = list(entry_ids[start : start + 500])
                # SQLite and PostgreSQL both count substr in characters, as Python's slicing does.
                query = sa.select(e.id, e.title, sa.func.substr(e.summary, 1, chars), sa.func.substr(e.text, 1, chars))
                for entry_id, title, summary, text in conn.execute(query.where(e.id.in_(chunk))):
                    found[entry_id] = (title, summary or text or "")
        return found

    def find_entry_by_url(self, url: str) -> Entry | None:
        """Return the most recent entry whose canonical URL is ``url``, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                self._entry_select().where(entries_table.c.url == url).order_by(entries_table.c.published_at.desc())
            ).first()
        return None if row is None else self._entry(row)

    def iter_entries(self, batch: int = 1000) -> Iterator[Entry]:
        """Yield every entry, in id order, a batch of rows at a time."""
        last = ""
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    self._entry_select().where(entries_table.c.id > last).order_by(entries_table.c.id).limit(batch)
                ).all()
            if not rows:
                return
            for row in rows:
                yield self._entry(row)
            last = rows[-1].id

    def count_entries(self) -> int:
        """Return how many entries are stored."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(entries_table)).scalar_one())

    # ------------------------------------------------------------------ change log

    def last_seq(self) -> int:
        """Return the newest change sequence number (0 when the log is empty)."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(changes_table.c.seq))).scalar() or 0)

    def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        """Return up to ``limit`` changes after ``seq``, each with the entry as stored now."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(changes_table.c.seq, changes_table.c.entry_id)
                .where(changes_table.c.seq > seq)
                .order_by(changes_table.c.seq)
                .limit(limit)
            ).all()
        entries = self.get_entries([r.entry_id for r in rows])
        return [Change(seq=r.seq, entry_id=r.entry_id, entry=entries.get(r.entry_id)) for r in rows]

    def pending_changes(self, after_seq: int) -> tuple[int, datetime | None]:
        """Return how many changes were logged after ``after_seq`` and when the oldest of them was (index lag)."""
        query = sa.select(sa.func.count(), sa.func.min(changes_table.c.at)).where(changes_table.c.seq > after_seq)
        with self.engine.connect() as conn:
            count, oldest = conn.execute(query).one()
        return int(count), oldest


def _upsert_change(entry_id: str, at: datetime, fingerprint: int, published_at: datetime) -> dict[str, Any]:
    """Return a change-log row for an inserted or updated entry, with what near-duplicate grouping needs."""
    return {"entry_id": entry_id, "op": "upsert", "at": at, "fingerprint": fingerprint, "published_at": published_at}
