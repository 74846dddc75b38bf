"""Related coverage over HTTP: the JSON API (/api/v1/related) and oEmbed (/oembed), plus helpers the embeds share.

The server only *matches* a URL a client supplies against stored entries; it never fetches it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, cast
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request

from aggregator.errors import QueryError
from aggregator.hosts import site_host
from aggregator.models import Entry
from aggregator.normalize.urls import canonical_url, is_http_url
from aggregator.store_meanings import terms_key
from aggregator.store_stories import MemberRow
from aggregator.stories import StoryArticle, StorySettings, article_from_entry
from aggregator.stories.cluster import keep_term_weights, term_weights_kept
from aggregator.stories.features import headline_alone
from aggregator.stories.meaning import Vector, meaning_key, meaning_text, shared_embedder, similarity
from aggregator.stories.pairs import LIST_FROM, Candidate, listable, pool_similarities, same_event
from index.related.finder import RelatedItem, query_for_entry
from index.related.rank import ArticleQuery

from .dates import parse_instant
from .public_url import public_url_for
from .related_cache import AnswerCache, Kept
from .serialize import article_ref, entry_link
from .services import services_of
from .versions import data_version

related_api = Blueprint("related", __name__)
related_api.add_app_template_global(entry_link)

#: Longest title and text accepted from an embedding page (longer input is cut, not refused).
MAX_TITLE_CHARS = 500
MAX_TEXT_CHARS = 5000
#: Answers at most this many items.
MAX_LIMIT = 20
#: Shared caches may keep an answer this long and serve it stale while refreshing (RFC 9111, RFC 5861).
CACHE_CONTROL = "public, max-age=60, s-maxage=300, stale-while-revalidate=600"
_ENTRY_PATH = re.compile(r"^/entries/([A-Za-z0-9_-]{1,64})/?$")
#: Below the article's own story, another story's article is shown only from this ranking score
#: (similarity x time factor) up: every item under 0.15 was of another labelled story on the
#: calibration halves of UCI and AllSides (bench/related_quality.py), 98% of those above were right.
FILL_MIN_SCORE = 0.15
#: Body words below which an article counts as a headline alone: of its story, only the members the
#: finder ranks are shown (see `related_items`). A sentence: on AllSides fed as first sentences of
#: 12-40 words (bench/related_quality.py --text summary, calibration half), 12 rather than 20 words
#: lifted by-entry P@5 .889 -> .903 and R@5 .827 -> .837, and halved the empty answers by title+text
#: (15.7% -> 8.3%) for 1.5 points of false-related; with sentences of 8-40 words, 8 did a little better
#: still, but a feed's boilerplate line ("Read the full story on our site") is that long. Headline
#: feeds (UCI) have no text: unchanged. Story assignment draws the same line (`StorySettings.headline_words`).
HEADLINE_ONLY_WORDS = StorySettings.headline_words
#: Finder items looked at beyond the limit when telling which story members it vouches for.
FINDER_LOOKAHEAD = 5
#: A stored headline's members reported within this many hours of it are listed from a lower meaning
#: similarity (`MEANING_HEADLINE_SAME_TIME`): outlets title one event differently the same half day.
MEMBER_SAME_TIME_HOURS = 12.0
#: Story members read beyond the limit for a stored headline, so that those its meaning floor drops can be replaced.
MEANING_LOOKAHEAD = 5
#: A stored headline (or short summary) lists, beside the story members the finder vouches for, those
#: of at least this meaning similarity to it (title and what text it has). Chosen on AllSides' calibration
#: half fed as headlines only (bench/related_quality.py --text headline: the highest recall at P@5 >= .90;
#: 0.5 fell to .898); UCI's by-entry figures are the same with and without it. Not for an article we do
#: not store: its headline is placed in a story on few words, and on UCI's absent stories the rule
#: listed something for 18% of them against 7.5%.
MEANING_HEADLINE_MEMBER = 0.55
#: The same from this similarity up for a member reported within `MEMBER_SAME_TIME_HOURS` of the headline
#: (as an article with text lists those however worded). Chosen on the same calibration half: of 0, 0.3,
#: 0.4 and 0.45, 0.3 kept P@5 at .900 exactly and 0.4 at .908 for three points less recall (R@5 .575
#: against .446 without it); UCI by entry gains a point of recall with it (R@5 .879 -> .888, P@5 .969 -> .970).
MEANING_HEADLINE_SAME_TIME = 0.4
#: The pool an article with text weighs (`pooled_members`): the newest `POOL_OWN_MEMBERS` of its story's
#: other outlets' articles, and the newest `POOL_NEAR_MEMBERS` of each of the `POOL_NEAR_STORIES` stories
#: it is nearest to in words under a loose rule (a score of `POOL_NEAR_WORDS`, one shared term) reported
#: within `POOL_WINDOW_HOURS` of it. Four stories gave AllSides' calibration figures of eight to the last
#: digit when this pool fed the meaning rescue it replaced, at half the cost.
POOL_OWN_MEMBERS = 40
POOL_NEAR_STORIES = 4
POOL_NEAR_WORDS = 0.03
POOL_NEAR_MEMBERS = 10
POOL_WINDOW_HOURS = 72.0
#: An article we do not store (an embedding page's) is listed from this probability up, a stored one from
#: `aggregator.stories.pairs.LIST_FROM`: its story is a guess, and a story absent from the index has
#: neighbours close in meaning (its own event's sequels). 0.3 is the lowest that showed something for no
#: more of AllSides' absent stories than the rules it replaced (calibration half: 13.4%; 0.2 gave 15.4%).
STRANGER_LIST_FROM = 0.3
#: Word cosine from which a candidate is a copy of the asked article's text (not a rival, not coverage).
COPY_WORDS = 0.8


# --------------------------------------------------------------------------- shared by the embeds


def own_entry_id(url: str) -> str | None:
    """Return the id in a URL of one of our own /entries/<id> pages (public or request-host form), else None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    # (host, path prefix) pairs under which our pages live: the public address, which may carry a path
    # prefix behind a reverse proxy, and the address this request came in on.
    roots = {(request.host.lower(), request.script_root)}
    configured = services_of(current_app).public_url
    if configured:
        public = urlsplit(configured)
        roots.add((public.netloc.lower(), public.path.rstrip("/")))
    for host, prefix in roots:
        if parts.netloc.lower() == host and parts.path.startswith(prefix + "/"):
            match = _ENTRY_PATH.match(parts.path[len(prefix) :])
            if match:
                return match.group(1)
    return None


def safe_link(url: str | None) -> str | None:
    """Return the URL when it is an absolute http(s) link, else None (never javascript:, data:, ...)."""
    return url if url and is_http_url(url) else None


def teaser(entry: Entry, limit: int = 160) -> str:
    """Return a one-line plain-text teaser of an entry, cut at a word boundary."""
    line = " ".join((entry.summary or entry.text).split())
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:.-–— ") + "…"


def item_json(item: RelatedItem) -> dict[str, Any]:
    """Return the public JSON form of one related item."""
    return {**article_fields(item.entry), "score": round(item.score, 4)}


def article_fields(entry: Entry) -> dict[str, Any]:
    """Return what every public list of articles (related items, a story's articles) says of one entry."""
    return {**article_ref(entry), "teaser": teaser(entry)}


def entry_for_url(url: str) -> Entry | None:
    """Return the stored entry a client-supplied URL names: our own /entries/<id> page or an article's canonical URL."""
    store = services_of(current_app).store
    own_id = own_entry_id(url)
    if own_id is not None:
        return store.get_entry(own_id)
    if not is_http_url(url):
        return None
    for candidate in dict.fromkeys((canonical_url(url), url)):
        entry = store.find_entry_by_url(candidate)
        # An entry without a link of its own stores its site's home page as its URL: never a match for it.
        if entry is not None and "url_missing" not in entry.flags:
            return entry
    return None


def limit_arg(default: int = 5) -> int:
    """Return the limit argument, 1..MAX_LIMIT (larger values are clamped)."""
    raw = request.args.get("limit", "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f"limit must be an integer, got {raw[:20]!r}") from None
    if value < 1:
        raise QueryError("limit must be at least 1")
    return min(value, MAX_LIMIT)


def resolve_article() -> tuple[ArticleQuery, Entry | None]:
    """Return the article the request asks about (entry=, url= or title=/text=); 404/400 when it names none."""
    args = request.args
    store = services_of(current_app).store
    entry_id = args.get("entry", "").strip()
    if entry_id:
        entry = store.get_entry(entry_id)
        if entry is None:
            abort(404, description=f"no entry with id {entry_id[:64]!r}")
        return query_for_entry(entry), entry
    url = args.get("url", "").strip()
    title = " ".join(args.get("title", "").split())[:MAX_TITLE_CHARS]
    text = " ".join(args.get("text", "").split())[:MAX_TEXT_CHARS]
    if url:
        entry = entry_for_url(url)
        if entry is not None:
            return query_for_entry(entry), entry
        if not title:
            abort(404, description="no stored article has this URL; pass title= (and text=) to describe it")
    if not title:
        raise QueryError("pass entry=<id>, url=<article URL>, or title=<headline> (with optional text= and date=)")
    site = site_host(url) if url and is_http_url(url) else ""
    return ArticleQuery(title=title, text=text, published_at=parse_instant(args.get("date")), site=site or None), None


def seconds_until_allowed(app: Flask) -> int:
    """Return 0 when this client may make the request (and count it), else the seconds until it may retry."""
    return services_of(app).rate_limiter.check(request.remote_addr or "unknown")


def rate_limited(app: Flask) -> Response | None:
    """Return a JSON 429 response when this client is over its per-minute budget, else None."""
    retry_after = seconds_until_allowed(app)
    if not retry_after:
        return None
    response = jsonify(error="too_many_requests", message=f"rate limit reached; retry in {retry_after} s")
    response.status_code = 429
    response.headers["Retry-After"] = str(retry_after)
    return response


def cacheable(response: Response) -> Response:
    """Return the response with Cache-Control and a strong ETag, turned into a 304 when the client has it."""
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.set_etag(hashlib.sha256(response.get_data()).hexdigest()[:32])
    return response.make_conditional(request)


# --------------------------------------------------------------------------- routes


@related_api.after_request
def open_cors(response: Response) -> Response:
    # Public, credential-free data: any site may read it from a script (no Allow-Credentials, ever).
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Access-Control-Expose-Headers"] = "ETag, Retry-After"
    return response


@related_api.route("/api/v1/related", methods=["OPTIONS"])
def related_preflight() -> Any:
    response = Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = "GET"
    response.headers["Access-Control-Allow-Headers"] = "If-None-Match"
    response.headers["Access-Control-Max-Age"] = "86400"
    return response


@related_api.get("/api/v1/related")
def related_json() -> Any:
    limited = rate_limited(current_app)
    if limited is not None:
        return limited
    story_id = requested_story()
    if story_id is not None:
        return cacheable(jsonify(items=story_items(story_id, limit_arg())))
    article, entry = resolve_article()
    return cacheable(jsonify(items=kept_related_items(article, entry, limit_arg())))


@related_api.get("/oembed")
def oembed() -> Any:
    limited = rate_limited(current_app)
    if limited is not None:
        return limited
    fmt = request.args.get("format", "json")
    if fmt != "json":
        # oEmbed 1.0 section 2.3.4.4: an unsupported format is 501 Not Implemented.
        abort(501, description="only format=json is supported")
    url = request.args.get("url", "").strip()
    if not url:
        raise QueryError("url is required: the article's URL or its /entries/<id> page")
    entry = entry_for_url(url)
    if entry is None:
        abort(404, description="no stored article has this URL")
    width = _dimension("maxwidth", 400)
    height = _dimension("maxheight", 360)
    src = public_url_for("embed.related_frame", entry=entry.id)
    html = (
        f'<iframe src="{_attr(src)}" title="Related coverage" width="{width}" height="{height}" '
        'style="border:0;max-width:100%" loading="lazy" '
        'sandbox="allow-scripts allow-popups allow-popups-to-escape-sandbox"></iframe>'
    )
    payload = {
        "version": "1.0",
        "type": "rich",
        "provider_name": "Newsdesk",
        "provider_url": public_url_for("pages.search_page"),
        "title": entry.title,
        "html": html,
        "width": width,
        "height": height,
        "cache_age": 300,
    }
    response = current_app.response_class(json.dumps(payload), mimetype="application/json")
    return cacheable(response)


def _dimension(name: str, default: int) -> int:
    raw = request.args.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f"{name} must be an integer, got {raw[:20]!r}") from None
    if value < 50:
        raise QueryError(f"{name} must be at least 50")
    return min(value, default)


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


# --------------------------------------------------------------------------- related coverage on stories


def story_of_article(article: ArticleQuery, entry: Entry | None) -> str | None:
    """Return the story an article belongs to: a stored entry's own, else the one `StoryAssigner.find` places it in."""
    services = services_of(current_app)
    if entry is not None:
        return services.stories.stories_of([entry.id]).get(entry.id)
    match = services.stories.find(services.story_assigner, story_article(article, entry))
    if match is None:
        return None
    return services.stories.resolve_stored(match.story.id)


def story_article(article: ArticleQuery, entry: Entry | None) -> StoryArticle:
    """Return the article as story assignment sees it: a stored entry's own view, else the embedding page's words."""
    if entry is not None:
        return article_from_entry(entry)
    published = article.published_at or datetime.now(UTC)
    key = hashlib.blake2b(f"{article.title}\n{article.text}".encode(), digest_size=8).hexdigest()
    return StoryArticle(
        id=f"query:{key}", title=article.title, published_at=published, text=article.text, outlet=article.site or ""
    )


def story_members(
    story_id: str,
    article: ArticleQuery,
    entry: Entry | None,
    limit: int,
    first: Sequence[str] = (),
    *,
    first_only: bool = False,
) -> list[Entry]:
    """Return the other outlets' articles of a story: ``first`` (those of them that are members) in
    that order, then the rest newest first; one per outlet, wire copies once. With ``first_only``,
    only ``first`` (the same list as without, less the others)."""
    services = services_of(current_app)
    # Chosen from light rows (no text): a story of hundreds of articles costs the few it lists. Those of
    # ``first`` come before the others and are chosen whatever follows, so ``first_only`` reads just them.
    if first_only and not first:
        return []
    members = services.stories.member_rows([story_id], only=first if first_only else None).get(story_id, [])
    by_id = {member.entry_id: member for member in members}
    preferred = [by_id[i] for i in dict.fromkeys(first) if i in by_id]
    # Newest first after the preferred.
    candidates = others_than_own(dict.fromkeys([*preferred, *reversed(members)]), article, entry)
    chosen = one_per_outlet(candidates, entry, limit)
    found = services.store.get_entries(chosen) if chosen else {}
    return [found[i] for i in chosen if i in found]


def others_than_own(members: Iterable[MemberRow], article: ArticleQuery, entry: Entry | None) -> list[MemberRow]:
    """Return ``members`` in their order, less the article itself and (by default) its own outlet's."""
    settings = services_of(current_app).config.related
    own_id = entry.id if entry is not None else None
    own_source = entry.source.title if entry is not None else None
    own_site = article.site
    return [
        member
        for member in members
        if member.entry_id != own_id
        and not (
            settings.exclude_same_source
            and (member.outlet == own_source or (own_site and site_host(member.site_url) == own_site))
        )
    ]


def one_per_outlet(candidates: Iterable[MemberRow], entry: Entry | None, limit: int) -> list[str]:
    """Return the entry ids of up to ``limit`` of ``candidates``, in order: `related.max_per_source` per
    outlet, wire copies (one title, one fingerprint, the article's own included) once."""
    max_per_source = services_of(current_app).config.related.max_per_source
    outlets: dict[str, int] = {}
    seen_titles: set[str] = set()
    seen_prints: set[int] = {entry.fingerprint} if entry is not None and entry.fingerprint else set()
    chosen: list[str] = []
    for member in candidates:
        if len(chosen) >= limit:
            break
        outlet = member.outlet
        title = " ".join(member.title.casefold().split())
        # Wire copies: the same agency text under several mastheads is one piece of coverage.
        if title in seen_titles or (member.fingerprint and member.fingerprint in seen_prints):
            continue
        if outlets.get(outlet, 0) >= max_per_source:
            continue
        outlets[outlet] = outlets.get(outlet, 0) + 1
        seen_titles.add(title)
        if member.fingerprint:
            seen_prints.add(member.fingerprint)
        chosen.append(member.entry_id)
    return chosen


def requested_story() -> str | None:
    """Return the standing story a story= argument names (an alias resolves to its survivor), None without one; 404 when unknown."""
    raw = request.args.get("story", "").strip()
    if not raw:
        return None
    story_id = services_of(current_app).stories.resolve_stored(raw[:64])
    if story_id is None:
        abort(404, description=f"no story with id {raw[:64]!r}")
    return story_id


def story_items(story_id: str, limit: int) -> list[dict[str, Any]]:
    """Return a story's articles as related JSON items: one per outlet, newest first, wire copies once."""
    members = story_members(story_id, ArticleQuery(title=""), None, limit)
    return [{**item_json(RelatedItem(entry=m, score=1.0, similarity=1.0)), "story_id": story_id} for m in members]


def headline_floor(entry: Entry, member: Entry) -> float:
    """Return the meaning similarity from which a stored headline lists ``member`` of its story: lower when the
    two were reported within `MEMBER_SAME_TIME_HOURS` of each other (`MEANING_HEADLINE_SAME_TIME`)."""
    if abs(entry.published_at - member.published_at) <= timedelta(hours=MEMBER_SAME_TIME_HOURS):
        return MEANING_HEADLINE_SAME_TIME
    return MEANING_HEADLINE_MEMBER


def headline_members(
    members: Sequence[Entry], vouched: set[str], heard: Vector | None, entry: Entry | None, limit: int
) -> list[Entry]:
    """Return up to ``limit`` of a headline's story ``members``, in order: those the finder vouches for and, for
    a stored headline of meaning ``heard``, those close to it in meaning (`headline_floor`). Members past the
    limit are not weighed (a meaning costs a text's encoding the first time)."""
    kept: list[Entry] = []
    for member in members:
        if len(kept) >= limit:
            break
        if member.id in vouched or (
            heard is not None
            and entry is not None
            and similarity(heard, entry_meaning(member)) >= headline_floor(entry, member)
        ):
            kept.append(member)
    return kept


def kept_related_items(article: ArticleQuery, entry: Entry | None, limit: int) -> list[dict[str, Any]]:
    """Return `related_items`, served from the process's answer cache while the data it came from is unchanged."""
    cache: AnswerCache = current_app.extensions.setdefault("newsdesk.related", AnswerCache())
    return cache.items(data_version(services_of(current_app)), article, entry, limit, related_items)


def related_items(article: ArticleQuery, entry: Entry | None, limit: int) -> list[dict[str, Any]]:
    """Return related coverage as JSON items: the other outlets' coverage of the article's event first, then
    related coverage if room is left.

    An article with text (12 words or more), stored or an embedding page's, weighs one pool of candidates
    at once (`pooled_members`): the other outlets' articles of its story and of the stories near it in
    words, each by `aggregator.stories.pairs` (meaning, words, time, story, and how each compares with the
    rest of the pool). A headline alone (a headline feed's entry, or an embedding page sending no text to
    speak of) is weak evidence of its story: a few words share two terms with many stories, so on UCI
    headlines the join threshold alone placed 34-40% of the headlines of stories absent from the index in
    a neighbouring story, and a stored headline's other story members were right 58-67% of the time
    against 95-98% for those the finder ranks (bench/related_quality.py). So a headline gets only the
    members the finder (index/related) vouches for, with its evidence rule (close in wording *and* in
    time), and, when we store it, those close to it in meaning (`MEANING_HEADLINE_MEMBER`). Below those,
    another story's article the finder ranks needs a score of at least `FILL_MIN_SCORE`."""
    services = services_of(current_app)
    story_id = story_of_article(article, entry)
    found = services.related.find(article, limit=limit + FINDER_LOOKAHEAD)
    # The finder's items' stories, read once: which of them are the article's story's, and what each item says.
    stories = services.stories.stories_of([item.entry.id for item in found]) if found else {}
    in_story = [item.entry.id for item in found if story_id is not None and stories.get(item.entry.id) == story_id]
    members: list[Entry] = []
    read_from: dict[str, str | None] = {}
    weighed: set[str] = set()
    if not headline_alone(article.text, HEADLINE_ONLY_WORDS):
        members, weighed, pool_stories = pooled_members(article, entry, story_article(article, entry), story_id, limit)
        read_from.update((m.id, pool_stories.get(m.id)) for m in members)
    else:
        if entry is None and not in_story:
            story_id = None  # nothing vouches for the story a stranger's headline was placed in
        # A stored headline's story members close to it in meaning count as vouched for
        # (`MEANING_HEADLINE_MEMBER`), weighed only when the finder vouches for fewer than are asked.
        weigh = entry is not None and story_id is not None and len(in_story) < limit
        heard = article_meaning(article, entry) if weigh else None
        if story_id is not None:
            # Without a meaning to weigh, only the members the finder vouches for are read.
            ask = limit + MEANING_LOOKAHEAD if heard is not None else limit
            members = story_members(story_id, article, entry, ask, first=in_story, first_only=heard is None)
            members = headline_members(members, set(in_story), heard, entry, limit)
            read_from.update(dict.fromkeys((m.id for m in members), story_id))
    items: list[dict[str, Any]] = []
    listed: set[str] = set() if entry is None else {entry.id}
    sources: dict[str, int] = {}
    for member in members:
        items.append(item_json(RelatedItem(entry=member, score=1.0, similarity=1.0)))
        listed.add(member.id)
        sources[member.source.title] = sources.get(member.source.title, 0) + 1
    # With the article's story known, what the finder adds is of other stories: only its close matches. What
    # the pool weighed and left out stays out.
    floor = FILL_MIN_SCORE if story_id is not None else 0.0
    fill = [
        item
        for item in found
        if item.entry.id not in listed
        and item.entry.id not in weighed
        and item.score >= floor
        and sources.get(item.entry.source.title, 0) < services.config.related.max_per_source
    ]
    items.extend(item_json(item) for item in fill[: max(0, limit - len(items))])
    # Each item names its story too, so an embedding site can link "full coverage" (/stories/<id>): a
    # member's is the story it was read from, the finder's items' were read above.
    read_from.update(stories)
    for item in items:
        item["story_id"] = read_from.get(item["id"])
    return items


def pooled_members(
    article: ArticleQuery, entry: Entry | None, near: StoryArticle, story_id: str | None, limit: int
) -> tuple[list[Entry], set[str], dict[str, str]]:
    """Return (the other outlets' articles listed for an article with text, every one weighed, entry id -> its
    story) from one pool: its story's members and those of the stories near it in words, each weighed by
    `aggregator.stories.pairs.same_event` and listed from `LIST_FROM` up (`STRANGER_LIST_FROM` for an
    article we do not store), most likely first."""
    services = services_of(current_app)
    window = timedelta(hours=POOL_WINDOW_HOURS)
    when = near.published_at
    matches = services.stories.nearby(
        services.story_assigner,
        near,
        limit=POOL_NEAR_STORIES,
        threshold=POOL_NEAR_WORDS,
        min_shared=1,
        exclude=story_id,
    )
    others = [
        match.story.id
        for match in matches
        if match.story.last_seen >= when - window and match.story.first_seen <= when + window
    ]
    rows = services.stories.member_rows([*([story_id] if story_id else []), *others])
    story_of: dict[str, str] = {}
    chosen: list[MemberRow] = []
    own = [(story_id, POOL_OWN_MEMBERS)] if story_id else []
    for story, size in (*own, *((other, POOL_NEAR_MEMBERS) for other in others)):
        for member in others_than_own(reversed(rows.get(story, [])), article, entry)[:size]:
            if member.entry_id not in story_of:
                story_of[member.entry_id] = story
                chosen.append(member)
    loaded = services.store.get_entries([m.entry_id for m in chosen])
    pool = [
        loaded[m.entry_id]
        for m in chosen
        if m.entry_id in loaded
        and (story_of[m.entry_id] == story_id or abs(loaded[m.entry_id].published_at - when) <= window)
    ]
    if not pool:
        return [], set(), story_of
    meaning = article_meaning(article, entry)
    articles = [article_from_entry(e) for e in pool]
    meanings, stored_terms = pool_features(articles)
    services.stories.refresh()  # the document count weighs the words: the writer's, not a stale one
    with services.stories.lock:  # the store's frequency cache is shared with lookups
        vectors = services.story_assigner.vectors([near, *articles], known=stored_terms)
    weighed = {other.id for other in pool}
    # Copies of the asked text (the asker's own article, which we store too, or a wire copy of it) are neither
    # weighed nor listed: they would stand as every other candidate's closest rival.
    similar = pool_similarities(
        [meaning, *meanings],
        vectors,
        ["", *(other.source.title for other in pool)],
        copy_words=COPY_WORDS,
    )
    pool = [pool[k] for k in similar.kept]
    candidates = [
        Candidate(
            meaning=float(similar.meaning[k]),
            words=float(similar.words[k]),
            hours=abs((other.published_at - when).total_seconds()) / 3600.0,
            same_story=story_of[other.id] == story_id,
            has_text=not headline_alone(other.text or other.summary, HEADLINE_ONLY_WORDS),
            fellow_meaning=float(similar.fellow_meaning[k]),
            fellow_words=float(similar.fellow_words[k]),
        )
        for k, other in enumerate(pool)
    ]
    probabilities = same_event(candidates, meaning_known=meaning is not None)
    likely = sorted(
        (
            (p, other)
            for p, other, listed in zip(
                probabilities,
                pool,
                listable(candidates, probabilities, threshold=STRANGER_LIST_FROM if entry is None else LIST_FROM),
                strict=True,
            )
            if listed
        ),
        key=lambda item: -item[0],
    )
    by_id = {m.entry_id: m for m in chosen}
    listed = one_per_outlet((by_id[other.id] for _, other in likely), entry, limit)
    found = {other.id: other for other in pool}
    return [found[i] for i in listed], weighed, story_of


# --------------------------------------------------------------------------- meaning


#: Texts' meanings, by `meaning_key` (an entry's words change only when it is updated, and then so
#: does the key): 20,000 of them hold about 25 MB, and the texts themselves are not kept.
MEANINGS = Kept(size=20_000, seconds=math.inf)


def _meaning(text: str) -> Vector | None:
    return cast("Vector | None", MEANINGS.get(meaning_key(text), lambda: _embed(text)))


def pool_features(articles: Sequence[StoryArticle]) -> tuple[list[Vector | None], dict[str, Mapping[str, float]]]:
    """Return what each stored article of a pool means (its story-assignment view, `article_from_entry`), in
    order, and the term weights the writer stored for them (entry id -> weights; `StoryAssigner.vectors`
    works the others out). Each part is the one kept in this process, else the writer's
    (`aggregator.store_meanings`, one read for the pool; none when the process keeps both parts of every
    candidate), else worked out here: a headline alone, which the writer does not store, an entry not
    assigned yet, or one whose words changed since."""
    services = services_of(current_app)
    settings = services.story_assigner.settings.features
    texts = [meaning_text(a.title, a.text) for a in articles]
    keys = [meaning_key(text) for text in texts]
    with_text = [not headline_alone(a.text, HEADLINE_ONLY_WORDS) for a in articles]
    stored = services.stories.stored_features(
        {
            a.id: key
            for a, key, wordy in zip(articles, keys, with_text, strict=True)
            if wordy and not MEANINGS.holds(key)
        },
        {
            a.id: terms_key(a, settings)
            for a, wordy in zip(articles, with_text, strict=True)
            if wordy and not term_weights_kept(a.title, a.text, a.language, settings)
        },
    )

    def read(entry_id: str, text: str) -> Vector | None:
        found = stored.meanings.get(entry_id)
        return found if found is not None else _embed(text)

    meanings = [
        cast("Vector | None", MEANINGS.get(key, partial(read, a.id, text)))
        for a, text, key in zip(articles, texts, keys, strict=True)
    ]
    for a in articles:  # kept like those worked out here: the next pool with them reads nothing
        if a.id in stored.terms:
            keep_term_weights(a.title, a.text, a.language, settings, stored.terms[a.id])
    return meanings, stored.terms


def _embed(text: str) -> Vector | None:
    embedder = shared_embedder()
    return embedder.vector(text) if embedder is not None else None


def entry_meaning(entry: Entry) -> Vector | None:
    """Return what a stored entry means (`aggregator.stories.meaning`), None without word vectors."""
    return _meaning(meaning_text(entry.title, entry.text or entry.summary))


def article_meaning(article: ArticleQuery, entry: Entry | None) -> Vector | None:
    """Return what the asked article means: a stored entry's words, else the embedding page's."""
    if entry is not None:
        return entry_meaning(entry)
    return _meaning(meaning_text(article.title, article.text))
