"""The front page (/): top stories, the latest articles and topic sections, or a welcome on a fresh install.

Everything here is read from the store and the live index and handed to ``pages/front.html`` as
plain records; the template decides nothing but layout.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from flask import request

from aggregator.config import FeedConfig
from aggregator.models import Entry, Feed
from aggregator.store_stories import MemberRow
from index.search.latest import newest_ids

from .related import safe_link, teaser
from .services import Services

#: Articles in "Latest".
LATEST_COUNT = 15
#: Articles in each topic section.
SECTION_COUNT = 5
#: Sections shown when front.sections is not set.
DEFAULT_SECTION_COUNT = 4
#: Other outlets' headlines under a story card's lead.
CARD_OTHERS = 3
#: Seconds a built front page may be served again while nothing it was built from changed.
FRONT_CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class ArticleItem:
    """One article in a list: the entry and what the list shows of it."""

    #: The article.
    entry: Entry
    #: One line of its text.
    teaser: str
    #: http(s) URL of its picture, or None.
    thumbnail: str | None


def article_item(entry: Entry) -> ArticleItem:
    """Return the list form of an entry (its picture only when it is an http(s) URL)."""
    return ArticleItem(entry=entry, teaser=teaser(entry), thumbnail=safe_link(entry.image.url if entry.image else None))


@dataclass(frozen=True)
class StoryCard:
    """A top story as the front page shows it: a lead article and a glimpse of the rest of its coverage."""

    #: The story's id; its page is /stories/<id>.
    story_id: str
    #: The article the card leads with: the first report.
    lead: ArticleItem
    #: A picture for the card: the lead's, else the earliest other picture of the story; None without one.
    thumbnail: str | None
    #: Distinct outlets covering the story.
    outlet_count: int
    #: Other outlets' articles, one per outlet, newest first (at most CARD_OTHERS).
    others: tuple[Entry, ...]


def story_card(story_id: str, entries: Sequence[Entry]) -> StoryCard:
    """Return the front-page card of a story made of ``entries`` (at least one)."""
    if not entries:
        raise ValueError("a story card needs at least one entry")
    in_time = sorted(entries, key=lambda e: (e.published_at, e.id))
    rows = [MemberRow(e.id, e.source.title, e.image.url if e.image else None) for e in in_time]
    card = card_from_rows(story_id, rows, {e.id: e for e in entries})
    assert card is not None  # every row's entry is given
    return card


def card_picks(rows: Sequence[MemberRow]) -> tuple[MemberRow, list[MemberRow]]:
    """Return the article a story's card leads with and the other outlets' it lists (``rows`` oldest first)."""
    # The first report leads: it does not change as coverage grows, so the card does not jump around.
    lead = rows[0]
    others: list[MemberRow] = []
    outlets = {lead.outlet}
    for row in reversed(rows[1:]):  # the newest first, one per outlet
        if row.outlet not in outlets:
            others.append(row)
            outlets.add(row.outlet)
            if len(others) >= CARD_OTHERS:
                break
    return lead, others


def card_from_rows(story_id: str, rows: Sequence[MemberRow], entries: Mapping[str, Entry]) -> StoryCard | None:
    """Return a story's card from its articles' light rows, oldest first, and the entries it shows (None when one is gone)."""
    lead, others = card_picks(rows)
    if lead.entry_id not in entries or any(row.entry_id not in entries for row in others):
        return None
    return StoryCard(
        story_id=story_id,
        lead=article_item(entries[lead.entry_id]),
        # The lead's picture, else the earliest other one of the story.
        thumbnail=next((url for row in rows if (url := safe_link(row.image_url))), None),
        outlet_count=len({row.outlet for row in rows}),
        others=tuple(entries[row.entry_id] for row in others),
    )


def story_path(story_id: str) -> str:
    """Return the path of a story's page, under the app's mount point."""
    return f"{request.script_root}/stories/{quote(story_id, safe='')}"


def topic_key(tag: str) -> str:
    """Return the form tags are compared in: case, spacing and commas do not matter."""
    return " ".join(tag.replace(",", " ").casefold().split())


def section_tags(
    configured: Sequence[str] | None, feeds: Sequence[Feed], enabled_count: int | None = None
) -> list[str]:
    """Return the front page's section tags: the configured ones, else the tags most enabled feeds carry.

    ``enabled_count`` is how many feeds are enabled in all, when ``feeds`` are only the tagged ones.
    """
    if configured is not None:
        return list(configured)
    enabled = [feed for feed in feeds if feed.enabled]
    everyone = len(enabled) if enabled_count is None else enabled_count
    counts: Counter[str] = Counter()
    spelled: dict[str, str] = {}
    for feed in enabled:
        keys: dict[str, str] = {}
        for tag in feed.tags:
            keys.setdefault(topic_key(tag), tag.strip())
        keys.pop("", None)
        counts.update(keys.keys())  # a feed counts once per tag, however often it lists it
        for key, tag in keys.items():
            spelled.setdefault(key, tag)
    # A tag every feed carries makes a section that repeats "Latest"; one feed's tag is a section too.
    useful = [tag for tag, count in counts.items() if count < everyone]
    useful.sort(key=lambda tag: (-counts[tag], tag))
    return [spelled[tag] for tag in useful[:DEFAULT_SECTION_COUNT]]


@dataclass(frozen=True)
class Section:
    """A topic section: the newest articles of the feeds carrying one operator tag."""

    #: Heading (the tag as the operator wrote it, first letter raised).
    title: str
    #: The articles, newest first.
    items: tuple[ArticleItem, ...]
    #: Outlet names of the section's feeds, for a "more" link to a search over them.
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Welcome:
    """What a fresh install shows instead of news: where the news will come from and how to get it."""

    #: Feeds in the store, with their polling state.
    feeds: tuple[Feed, ...]
    #: Feeds config.toml lists that the store does not know yet (no poll has run with this config).
    pending: tuple[FeedConfig, ...]
    #: True when this process runs the polling scheduler (`newsdesk run`).
    polling: bool
    #: When the next check of an enabled feed is due (None: as soon as polling runs).
    next_check_at: datetime | None
    #: Entries stored but not searchable yet (the index has not caught up).
    unindexed: int
    #: The configuration file in effect ("" when built-in defaults).
    config_path: str
    #: The time the page was made.
    now: datetime

    @property
    def due_now(self) -> bool:
        """Return True when some feed is due for a check already."""
        return self.next_check_at is None or self.next_check_at <= self.now

    @property
    def feed_count(self) -> int:
        """Return how many feeds are configured in all."""
        return len(self.feeds) + len(self.pending)


@dataclass(frozen=True)
class FrontPage:
    """Everything the front page shows."""

    #: Top-story cards; the area is hidden when there are none.
    stories: tuple[StoryCard, ...]
    #: The newest articles, one per near-duplicate group.
    latest: tuple[ArticleItem, ...]
    #: Topic sections that have articles.
    sections: tuple[Section, ...]
    #: Set instead of the above when nothing can be shown yet.
    welcome: Welcome | None = None


def build_front_page(services: Services, stories: Sequence[StoryCard] = ()) -> FrontPage:
    """Return the front page from the live index and the store, with the given top-story cards."""
    latest_ids = newest_ids(services.index_reader, LATEST_COUNT)
    if not latest_ids:
        return _welcome_page(services)
    # Only the feeds carrying a tag, and only their tags, keys and titles (no counting): an install of
    # thousands of untagged outlets would otherwise read them all for every front page.
    feeds = services.store.list_feeds(counts=False, tagged_only=True)
    wanted: list[tuple[str, list[Feed], list[str]]] = []
    topics = [(feed, {topic_key(t) for t in feed.tags}) for feed in feeds]
    configured = services.config.front.sections
    enabled = None if configured is not None else services.store.count_feeds(enabled_only=True)
    for tag in section_tags(configured, feeds, enabled):
        members = [feed for feed, keys in topics if topic_key(tag) in keys]
        ids = newest_ids(services.index_reader, SECTION_COUNT, feed_keys={feed.key for feed in members})
        wanted.append((tag, members, ids))
    # One store read for every article on the page.
    entries = services.store.get_entries([*latest_ids, *(i for _, _, ids in wanted for i in ids)])

    def items(ids: Sequence[str]) -> tuple[ArticleItem, ...]:
        return tuple(article_item(entries[i]) for i in ids if i in entries)

    sections = tuple(
        Section(
            title=tag.strip()[:1].upper() + tag.strip()[1:],
            items=found,
            sources=tuple(dict.fromkeys(feed.title for feed in members if feed.title)),
        )
        for tag, members, ids in wanted
        if (found := items(ids))
    )
    latest = items(latest_ids)
    if not latest:  # the index still lists entries the store has just removed: nothing to show after all
        return _welcome_page(services)
    return FrontPage(stories=tuple(stories), latest=latest, sections=sections)


class FrontCache:
    """The last front page built and the state it was built from, shared by a process's threads.

    The page changes only when the index commits, the store logs a change or stories are assigned,
    so it is built once per such change (one thread builds, the others wait for it) instead of on
    every request; feeds' tags and titles, which change no log, show within ``seconds``.
    """

    def __init__(self, seconds: float = FRONT_CACHE_SECONDS) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._key: Hashable = None
        self._page: FrontPage | None = None
        self._built = 0.0

    def page(self, key: Hashable, build: Callable[[], FrontPage]) -> FrontPage:
        """Return the page built for ``key`` when it is recent enough, else build (and keep) a new one."""
        with self._lock:
            now = time.monotonic()
            if self._page is not None and self._key == key and now - self._built < self.seconds:
                return self._page
            page = build()
            # A welcome says when the first poll is due and counts what waits: never kept.
            if page.welcome is None:
                self._key, self._page, self._built = key, page, now
            else:
                self._page = None
            return page


def _welcome_page(services: Services) -> FrontPage:
    """Return a front page that is a welcome: where the news will come from and what to do."""
    feeds = services.store.list_feeds()
    known = {feed.url for feed in feeds} | {feed.key for feed in feeds}
    enabled = [feed for feed in feeds if feed.enabled]
    # The earliest next check of an enabled feed (a feed added but never checked is due at once).
    due = [feed.next_check_at for feed in enabled]
    scheduler = services.scheduler
    welcome = Welcome(
        feeds=tuple(feeds),
        pending=tuple(fc for fc in services.config.feeds if fc.url not in known),
        polling=bool(scheduler is not None and getattr(scheduler, "running", False)),
        next_check_at=None if not due or None in due else min(d for d in due if d is not None),
        unindexed=services.store.count_entries(),
        config_path=services.config.source_path,
        now=datetime.now(UTC),
    )
    return FrontPage(stories=(), latest=(), sections=(), welcome=welcome)
