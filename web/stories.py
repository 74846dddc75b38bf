"""Stories on the web: the story page (/stories/<id>), its Atom feed, the story API and the front page's top stories.

Stories live in the store (`aggregator.store_stories`); a merged story's id answers 301 to the
story it lives on in, so a link once shared keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, jsonify, redirect, render_template, request, url_for
from lxml.builder import ElementMaker

from aggregator.models import Entry
from aggregator.store_stories import MemberRow, StoryRow
from aggregator.stories import StoryState

from .api import int_arg
from .dates import date_or_instant
from .front import StoryCard, card_from_rows, card_picks, story_path
from .public_url import public_root
from .related import article_fields, safe_link, teaser
from .related_cache import Kept
from .serialize import iso
from .services import Services, services_of
from .syndication import ATOM, _xml, atom_entry, xml_text
from .versions import data_version

stories = Blueprint("stories", __name__)

#: Top stories on the front page.
FRONT_STORIES = 6
#: Most stories per API page.
MAX_STORIES_PER_PAGE = 50
#: Articles listed per story in the story list API.
LIST_ARTICLES = 10
#: Most related stories listed under a story's timeline.
RELATED_STORIES = 4
#: Candidate stories (sharing the heaviest terms) examined to find them.
RELATED_CANDIDATES = 30
#: Smallest cosine of two stories' centroids for them to count as related (sharing 2+ terms). Chosen
#: on the calibration half of the UCI stories (bench/stories_quality.py --related-stories): from 0.15
#: to 0.5 about 10% of the links join stories of another topic, a floor set by the shared-terms rule;
#: 0.15 keeps 1.6 times the links of 0.2 and more of them join fragments of one labelled story.
RELATED_STORY_SIMILARITY = 0.15


@dataclass(frozen=True)
class Story:
    """A story as its page shows it."""

    #: The story's row (counts, span).
    row: StoryRow
    #: Its stored articles, oldest first (the first reported first).
    entries: tuple[Entry, ...]

    @property
    def outlets(self) -> int:
        """Return how many distinct outlets the stored articles come from."""
        return len({entry.source.title for entry in self.entries})

    @property
    def image(self) -> str | None:
        """Return the best picture: the first report's, else the earliest one any outlet gave."""
        for entry in self.entries:
            link = safe_link(entry.image.url if entry.image else None)
            if link:
                return link
        return None


@dataclass(frozen=True)
class RelatedStory:
    """A closely related other story as the story page links it (or a lone article, not shown as a story)."""

    #: Its headline: the story's first report, or the lone article's title.
    title: str
    #: Where it links: the story's page, or the article's page.
    href: str
    #: Outlets covering it (1 for a lone article).
    outlet_count: int
    #: The story's id; None for a lone article.
    story_id: str | None


def centroid_cosine(a: StoryState, b: StoryState) -> float:
    """Return the cosine of two stories' centroids (1 for the same terms in the same proportions)."""
    small, large = (a.centroid, b.centroid) if len(a.centroid) <= len(b.centroid) else (b.centroid, a.centroid)
    return sum(weight * large.get(term, 0.0) for term, weight in small.items()) / (a.norm * b.norm)


def related_stories(services: Services, story: Story, limit: int = RELATED_STORIES) -> list[RelatedStory]:
    """Return up to ``limit`` other stories close to this one: centroids alike, within the related window."""
    known = services.stories
    known.refresh()
    window = timedelta(seconds=float(services.config.related.window))
    with known.lock:
        state = known.story(story.row.id)
        if state is None or not state.centroid:
            return []
        candidates = known.stories_for_terms(
            state.centroid, state.first_seen - window, state.last_seen + window, RELATED_CANDIDATES
        )
    # The story's own centroid finds the stories sharing its heaviest terms; only those alike as a
    # whole count (a same-company or same-city story shares a name or two, not the event's words),
    # and on as many terms as an article needs to join a story: a lone headline's centroid is a
    # few words, and one word in common ("trace", "television") makes a high cosine of nothing.
    shared_terms = services.story_assigner.settings.min_shared_terms
    scored = sorted(
        (
            (score, other.id)
            for _, other in candidates
            if other.id != state.id
            and other.merged_into is None
            and len(state.centroid.keys() & other.centroid.keys()) >= shared_terms
            and (score := centroid_cosine(state, other)) >= RELATED_STORY_SIMILARITY
        ),
        reverse=True,
    )[:limit]
    chosen: list[RelatedStory] = []
    min_outlets = services.config.stories.min_outlets
    # One read each for their rows, their first reports' ids and those entries, whatever the count.
    ids = [other for _, other in scored]
    rows = known.story_rows(ids)
    firsts = known.first_members(ids)
    leads = services.store.get_entries(list(firsts.values()))
    for other in ids:
        row = rows.get(other)
        lead = leads.get(firsts.get(other, ""))
        if row is None or lead is None:
            continue
        if row.outlet_count >= min_outlets:
            chosen.append(RelatedStory(lead.title, story_path(other), row.outlet_count, other))
        else:
            # One outlet's article is not shown as a story: link the article itself.
            chosen.append(RelatedStory(lead.title, url_for("pages.entry_page", entry_id=lead.id), 1, None))
    return chosen


def load_story(services: Services, story_id: str) -> Story | None:
    """Return a standing story with its stored articles, or None."""
    row = services.stories.story_row(story_id)
    if row is None:
        return None
    ids = services.stories.member_ids(story_id)
    found = services.store.get_entries(ids)
    return Story(row=row, entries=tuple(found[i] for i in ids if i in found))


def _story_or_redirect(story_id: str, endpoint: str) -> Story | Response:
    services = services_of(current_app)
    current = services.stories.resolve_stored(story_id)
    if current is None:
        abort(404, description=f"no story with id {story_id!r}")
    if current != story_id:
        # A merged story: its id redirects for good to the story it is part of now.
        return redirect(url_for(endpoint, story_id=current, **request.args), 301)  # type: ignore[return-value]
    story = load_story(services, current)
    if story is None or not story.entries:
        abort(404, description=f"no story with id {story_id!r}")
    return story


def top_cards(services: Services, limit: int = FRONT_STORIES) -> list[StoryCard]:
    """Return the front page's top-story cards: stories of enough outlets, by breadth and recency."""
    options = services.config.stories
    rows, _ = services.stories.top(
        min_outlets=options.min_outlets, limit=limit, window=timedelta(seconds=float(options.quiet_period))
    )
    # Light rows of every member pick what each card shows; only those few entries are read in full
    # (a big story has hundreds of articles, and reading them all cost the front page a second).
    members = services.stories.member_rows([row.id for row in rows])
    picks = {story_id: card_picks(found) for story_id, found in members.items() if found}
    wanted = [r.entry_id for lead, others in picks.values() for r in (lead, *others)]
    entries = services.store.get_entries(wanted)
    cards = []
    for row in rows:
        if row.id in picks:
            card = card_from_rows(row.id, members[row.id], entries)
            if card is not None and card.outlet_count >= options.min_outlets:
                cards.append(card)
    return cards


def article_json(entry: Entry, *, first: bool = False) -> dict[str, Any]:
    """Return an article of a story as the story API lists it."""
    return {**article_fields(entry), "first": first}


def story_json(story: Story) -> dict[str, Any]:
    """Return the public JSON form of a story with every stored article, oldest first."""
    entries = story.entries
    return _story_fields(
        story.row,
        title=entries[0].title if entries else "",
        outlet_count=story.outlets,
        article_count=len(entries),
        image=story.image,
        listed=entries,
    )


def listed_story_json(row: StoryRow, members: Sequence[MemberRow], entries: Mapping[str, Entry]) -> dict[str, Any]:
    """Return a story as the story list gives it (as `story_json` gives it, with only the first LIST_ARTICLES articles), from its
    members' light rows (oldest first) and the entries of the first LIST_ARTICLES of them."""
    # Counts, title and picture come from the light rows: a story of hundreds of articles costs the
    # few it lists, not a full read of every member (text and all).
    return _story_fields(
        row,
        title=members[0].title if members else "",
        outlet_count=len({member.outlet for member in members}),
        article_count=len(members),
        image=next((url for member in members if (url := safe_link(member.image_url))), None),
        listed=[entries[m.entry_id] for m in members[:LIST_ARTICLES] if m.entry_id in entries],
    )


def _story_fields(
    row: StoryRow, *, title: str, outlet_count: int, article_count: int, image: str | None, listed: Sequence[Entry]
) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": f"{public_root()}/stories/{quote(row.id, safe='')}",
        "title": title,
        "outlet_count": outlet_count,
        "article_count": article_count,
        "first_seen": iso(row.first_seen),
        "last_seen": iso(row.last_seen),
        "image": image,
        "articles": [article_json(entry, first=i == 0) for i, entry in enumerate(listed)],
    }


@stories.get("/stories/<story_id>")
def story_page(story_id: str) -> Any:
    found = _story_or_redirect(story_id, "stories.story_page")
    if isinstance(found, Response):
        return found
    related = related_stories(services_of(current_app), found)
    return render_template("pages/story.html", story=found, story_path=story_path, related=related, teaser=teaser)


@stories.get("/stories/<story_id>.atom")
def story_atom(story_id: str) -> Any:
    found = _story_or_redirect(story_id, "stories.story_atom")
    if isinstance(found, Response):
        return found
    root = public_root()
    page = f"{root}/stories/{quote(found.row.id, safe='')}"
    E = ElementMaker(namespace=ATOM, nsmap={None: ATOM})
    feed = E.feed(
        E.title(xml_text(f"Newsdesk story: {found.entries[0].title}")),
        E.subtitle("Every outlet's coverage of one story, newest first"),
        E.id(xml_text(page)),
        E.updated(iso(max(entry.published_at for entry in found.entries))),
        E.link(rel="self", type="application/atom+xml", href=xml_text(page + ".atom")),
        E.link(rel="alternate", type="text/html", href=xml_text(page)),
        E.generator("Newsdesk"),
    )
    for entry in sorted(found.entries, key=lambda e: (e.published_at, e.id), reverse=True):
        item = atom_entry(E, entry, E.summary(xml_text(teaser(entry, 400))))
        item.append(E.author(E.name(xml_text(entry.source.title))))
        feed.append(item)
    return _xml(feed, "application/atom+xml")


#: Story lists kept per process (by query), and for how long at most while nothing they came from changed.
STORY_LISTS = 256
STORY_LIST_SECONDS = 30.0


@stories.get("/api/v1/stories")
def stories_api() -> Any:
    services = services_of(current_app)
    options = services.config.stories

    def values(name: str) -> list[str]:
        return [v.strip() for v in request.args.getlist(name) if v.strip()]

    page = int_arg("page", 1, low=1, high=10_000)
    per_page = int_arg("per_page", 10, low=1, high=MAX_STORIES_PER_PAGE)
    since = date_or_instant(request.args.get("since"), "since")
    tags, languages, sources = values("tag"), values("lang"), values("source")

    def listed() -> dict[str, Any]:
        rows, total = services.stories.top(
            min_outlets=options.min_outlets,
            limit=per_page,
            offset=(page - 1) * per_page,
            since=since,
            window=timedelta(seconds=float(options.quiet_period)),
            tags=tags,
            languages=languages,
            sources=sources,
        )
        # Light rows of every member, then in full only the articles the list shows (as the front page does).
        members = services.stories.member_rows([row.id for row in rows])
        shown = [m.entry_id for row in rows for m in members.get(row.id, [])[:LIST_ARTICLES]]
        entries = services.store.get_entries(shown)
        return {
            "total": total,
            "page": page,
            "per_page": per_page,
            "pages": max(1, -(-total // per_page)),
            "stories": [listed_story_json(row, members[row.id], entries) for row in rows if members.get(row.id)],
        }

    # The top stories of a busy story list (the top members' rows of hundreds of articles each) are read
    # once per change of the data they come from, as the front page is (links name the public root).
    kept: Kept = current_app.extensions.setdefault("newsdesk.story_lists", Kept(STORY_LISTS, STORY_LIST_SECONDS))
    key = (data_version(services), public_root(), page, per_page, since, tuple(tags), tuple(languages), tuple(sources))
    return jsonify(kept.get(key, listed))


@stories.get("/api/v1/stories/<story_id>")
def story_api(story_id: str) -> Any:
    found = _story_or_redirect(story_id, "stories.story_api")
    if isinstance(found, Response):
        return found
    return jsonify(story_json(found))


def story_ids(services: Services, entry_ids: Sequence[str]) -> dict[str, str]:
    """Return entry id -> story id for the entries that have one (for hits, entries and related items)."""
    return services.stories.stories_of(list(entry_ids)) if entry_ids else {}
