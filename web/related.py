"""Related coverage over HTTP: the JSON API (/api/v1/related) and oEmbed (/oembed), plus helpers the embeds share.

The server only *matches* a URL a client supplies against stored entries; it never fetches it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request

from aggregator.errors import QueryError
from aggregator.hosts import site_host
from aggregator.models import Entry
from aggregator.normalize.urls import canonical_url, is_http_url
from aggregator.store_stories import MemberRow
from aggregator.stories import StoryArticle, StorySettings, article_from_entry
from aggregator.stories.closeness import closeness
from aggregator.stories.features import headline_alone
from aggregator.stories.meaning import Vector, meaning_text, shared_embedder, similarity
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
#: A story member the finder does not rank is listed for an article only this close to the article
#: itself (`aggregator.stories.closeness`: cosine over time apart), not only to the story, whose
#: centroid also gathers a developing event's sequels a day or two later. Chosen on AllSides'
#: calibration half (bench/related_quality.py --corpus allsides; README "Related coverage on
#: AllSides"): most members below it, and all over two days away, were of another labelled story.
MEMBER_MIN_CLOSENESS = 0.15
#: Hours apart at which closeness is halved (coverage of one event spreads over about a day).
MEMBER_TIME_SCALE_HOURS = 36.0
#: A member reported within this many hours of the article is listed however it is worded: outlets
#: word one event very differently (pairwise cosines of 0.05-0.15), and a sequel takes longer.
MEMBER_SAME_TIME_HOURS = 12.0
#: Story members scored for closeness beyond the finder's picks: the newest this many.
MEMBER_CANDIDATES = 40
#: A member the finder does not rank is listed only when the article is at least this share as close
#: to it as its closest fellow member of another outlet (`fellow_closeness`). Chosen on AllSides'
#: calibration half, ten draws pooled (README "Related coverage on AllSides").
MEMBER_FELLOW_RATIO = 0.5
#: Closeness from which two articles count as copies of one text (not fellows: see `fellow_closeness`).
COPY_CLOSENESS = 0.8
#: Members of the second chance's story asked whether their own second chance points back (newest first).
RECIPROCAL_CANDIDATES = 5
#: Smallest second-chance score of two articles that are each other's nearest story.
RECIPROCAL_THRESHOLD = 0.08
#: For an article with text, a story member is listed only from this share of the meaning similarity
#: (`aggregator.stories.meaning`: cosine of word-vector means over title and lead) of the closest
#: member to the article: a story that gathered two events keeps the one the article is about. The
#: finder's order stays (ordering by meaning cost Hit@1 .927 -> .914 on AllSides' calibration half).
MEANING_RATIO = 0.65
#: Meaning similarity from which a member is a copy of the article's text (not a bar for the ratio).
MEANING_COPY = 0.9
#: Story members read beyond the limit, so that those the ratio drops can be replaced.
MEANING_LOOKAHEAD = 5
#: A stored article no other outlet's coverage joined, however it is worded, gets the other outlet's
#: article closest to it in meaning, from this similarity up, among the members of the stories it is
#: near in words (`MEANING_RESCUE_STORIES` of them from a word score of `MEANING_RESCUE_WORDS` and
#: one shared term, `MEANING_RESCUE_MEMBERS` members each) within `MEANING_RESCUE_HOURS`. Four stories
#: gave AllSides' calibration figures of eight to the last digit (two lost 0.3 point of Hit@1), at
#: half the cost (a rescue reads its stories' members and entries; about 3.6 ms of CPU at 228,000 entries).
MEANING_RESCUE_FLOOR = 0.4
MEANING_RESCUE_STORIES = 4
MEANING_RESCUE_WORDS = 0.03
MEANING_RESCUE_MEMBERS = 5
MEANING_RESCUE_HOURS = 72.0
#: An article we do not store (an embedding page's) is rescued the same way from this similarity up,
#: within this many hours: its story is a guess, and a story absent from the index has neighbours
#: close in meaning (its own event's sequels) a day or more away.
MEANING_STRANGER_RESCUE_FLOOR = 0.5
MEANING_STRANGER_RESCUE_HOURS = 24.0
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
#: The score a rescued item is listed with: below a story's own (1.0), above the fill's floor.
MEANING_RESCUE_SCORE = 0.5


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
    near: StoryArticle | None = None,
    *,
    first_only: bool = False,
) -> list[Entry]:
    """Return the other outlets' articles of a story: ``first`` (those of them that are members) in
    that order, then the rest newest first; one per outlet, wire copies once. With ``near``, the
    others are those close to that article itself (`MEMBER_MIN_CLOSENESS`), closest first, and for a
    stored ``entry`` not much closer to a fellow member than to it (`MEMBER_FELLOW_RATIO`). With
    ``first_only``, only ``first`` (the same list as without, less the others)."""
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
    loaded: dict[str, Entry] = {}
    if near is not None:
        candidates = candidates[: len(preferred) + MEMBER_CANDIDATES]
        loaded = services.store.get_entries([member.entry_id for member in candidates])
        close = member_closeness(near, [loaded[m.entry_id] for m in candidates if m.entry_id in loaded])
        vouched = {member.entry_id for member in preferred}
        same_time = timedelta(hours=MEMBER_SAME_TIME_HOURS)
        near_in_time = {i for i, other in loaded.items() if abs(other.published_at - near.published_at) <= same_time}
        if entry is not None:
            # A member much closer to a fellow member than to the article is of another event the story
            # gathered (a sequel and its own coverage): not listed unless the finder vouches for it. Not
            # for an article we do not store: there it cost more coverage than it saved (README).
            fellows = fellow_closeness([loaded[m.entry_id] for m in candidates if m.entry_id in loaded])
            candidates = [
                m
                for m in candidates
                if m.entry_id in vouched
                or close.get(m.entry_id, 0.0) >= MEMBER_FELLOW_RATIO * fellows.get(m.entry_id, 0.0)
            ]
        # The finder's own picks stay first; then the members close to the article (or reported about
        # the same time, however worded), closest first.
        candidates = [m for m in candidates if m.entry_id in vouched] + sorted(
            (
                m
                for m in candidates
                if m.entry_id not in vouched
                and (m.entry_id in near_in_time or close.get(m.entry_id, 0.0) >= MEMBER_MIN_CLOSENESS)
            ),
            key=lambda m: -close.get(m.entry_id, 0.0),
        )
    chosen = one_per_outlet(candidates, entry, limit)
    missing = [i for i in chosen if i not in loaded]
    found = {**loaded, **services.store.get_entries(missing)} if missing else loaded
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


def fellow_closeness(others: Sequence[Entry]) -> dict[str, float]:
    """Return entry id -> the closeness of each of ``others`` to the closest of them from another outlet that
    is not a copy of it (closeness under `COPY_CLOSENESS`: wire copies of one text do not outrank the rest)."""
    services = services_of(current_app)
    articles = [article_from_entry(other) for other in others]
    with services.stories.lock:
        vectors = services.story_assigner.vectors(articles)
    best: dict[str, float] = {}
    for i, (one, one_vector) in enumerate(zip(articles, vectors, strict=True)):
        for other, other_vector in zip(articles[i + 1 :], vectors[i + 1 :], strict=True):
            if one.outlet == other.outlet:
                continue
            value = closeness(one_vector, one.published_at, other_vector, other.published_at, MEMBER_TIME_SCALE_HOURS)
            if value < COPY_CLOSENESS:
                best[one.id] = max(best.get(one.id, 0.0), value)
                best[other.id] = max(best.get(other.id, 0.0), value)
    return best


def member_closeness(near: StoryArticle, others: Sequence[Entry]) -> dict[str, float]:
    """Return entry id -> closeness (`aggregator.stories.closeness`) of each of ``others`` to ``near``."""
    services = services_of(current_app)
    articles = [near, *(article_from_entry(other) for other in others)]
    services.stories.refresh()  # the document count weighs the words: the writer's, not a stale one
    with services.stories.lock:  # the store's frequency cache is shared with lookups
        vector, *vectors = services.story_assigner.vectors(articles)
    return {
        other.id: closeness(vector, near.published_at, other_vector, other.published_at, MEMBER_TIME_SCALE_HOURS)
        for other, other_vector in zip(others, vectors, strict=True)
    }


def reciprocal_members(
    story_id: str, nearest: str, article: ArticleQuery, entry: Entry | None, limit: int
) -> list[Entry]:
    """Return the other outlets' articles of story ``nearest`` whose own second chance is story ``story_id``.

    Two articles that are each other's nearest story under the second-chance rule (mutual nearest
    neighbours) are listed however far apart in time: neither has anything closer, and the rule's
    lead over the next story holds both ways."""
    services = services_of(current_app)
    chosen = story_members(nearest, article, entry, RECIPROCAL_CANDIDATES)
    kept = []
    for member in chosen:
        back = services.stories.find(
            services.story_assigner,
            article_from_entry(member),
            second_chance=True,
            exclude=nearest,
            threshold=RECIPROCAL_THRESHOLD,
        )
        if back is not None and services.stories.resolve_stored(back.story.id) == story_id:
            kept.append(member)
    return kept[:limit]


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
    """Return related coverage as JSON items: the article's story first, then related coverage if room is left.

    The finder (index/related) is asked too, and its answer decides three things. Story members it
    ranks come first (the story's closest coverage of this article, not only its newest). For a
    headline alone (a headline feed's entry, or an embedding page sending no text to speak of) the
    story is weak evidence: a few words share two terms with many stories, so on UCI headlines the
    join threshold alone placed 34-40% of the headlines of stories absent from the index in a
    neighbouring story, and a stored headline's other story members were right 58-67% of the time
    against 95-98% for those the finder ranks (bench/related_quality.py). So a headline gets only
    the members the finder vouches for, with its evidence rule (close in wording *and* in time), and,
    when we store it, those close to it in meaning (`MEANING_HEADLINE_MEMBER`); an article with text
    gets its whole story. Below the story's own members, another story's
    article needs a ranking score of at least `FILL_MIN_SCORE`."""
    services = services_of(current_app)
    story_id = story_of_article(article, entry)
    found = services.related.find(article, limit=limit + FINDER_LOOKAHEAD)
    # The finder's items' stories, read once: which of them are the article's story's, and what each item says.
    stories = services.stories.stories_of([item.entry.id for item in found]) if found else {}
    in_story = [item.entry.id for item in found if story_id is not None and stories.get(item.entry.id) == story_id]
    headline_only = headline_alone(article.text, HEADLINE_ONLY_WORDS)
    if entry is None and headline_only and not in_story:
        story_id = None  # nothing vouches for the story a stranger's headline was placed in
    members: list[Entry] = []
    # A headline's members are only those the finder vouches for: no closeness to weigh there.
    near = story_article(article, entry) if story_id is not None and not headline_only else None
    # What an article with text means (a headline's few words say too little to weigh that way).
    meaning = None if headline_only else article_meaning(article, entry)
    # A stored headline's story members close to it in meaning count as vouched for (`MEANING_HEADLINE_MEMBER`),
    # weighed only when the finder vouches for fewer than are asked.
    weigh = headline_only and entry is not None and story_id is not None and len(in_story) < limit
    heard = article_meaning(article, entry) if weigh else None
    if story_id is not None:
        # A headline keeps only the members the finder vouches for (or, stored, close in meaning): without a
        # meaning to weigh, the others are not read.
        ask = limit + MEANING_LOOKAHEAD if meaning is not None or heard is not None else limit
        only_vouched = headline_only and heard is None
        members = story_members(story_id, article, entry, ask, first=in_story, near=near, first_only=only_vouched)
        if headline_only:
            members = headline_members(members, set(in_story), heard, entry, limit)
        members = closest_in_meaning(meaning, members)[:limit]
    # A member's story is the one it was read from.
    read_from: dict[str, str | None] = dict.fromkeys((m.id for m in members), story_id)
    nearby: list[Entry] = []
    nearby_score = 0.0
    if not members and near is not None and entry is not None and story_id is not None:
        # No other outlet's coverage joined this article's story: the story it is nearest to under the
        # stricter second-chance rule, as far as its members are close to the article itself; failing
        # that, the members whose own nearest story this article's is (`reciprocal_members`).
        match = services.stories.find(services.story_assigner, near, second_chance=True, exclude=story_id)
        nearest = services.stories.resolve_stored(match.story.id) if match is not None else None
        if match is not None and nearest is not None and nearest != story_id:
            nearby = closest_in_meaning(meaning, story_members(nearest, article, entry, limit, near=near))
            read_from.update(dict.fromkeys((m.id for m in nearby), nearest))
            nearby_score = match.similarity
        if not nearby:
            match = services.stories.find(
                services.story_assigner, near, second_chance=True, exclude=story_id, threshold=RECIPROCAL_THRESHOLD
            )
            nearest = services.stories.resolve_stored(match.story.id) if match is not None else None
            if match is not None and nearest is not None and nearest != story_id:
                nearby = closest_in_meaning(meaning, reciprocal_members(story_id, nearest, article, entry, limit))
                read_from.update(dict.fromkeys((m.id for m in nearby), nearest))
                nearby_score = match.similarity
    rescued: list[RelatedItem] = []
    if not members and not nearby and meaning is not None:
        # An article we do not store (an embedding page's) is held to a stricter rule: nearer in
        # meaning and in time (the stored one's rule listed something for 19% of the stories absent
        # from the index against 13%, on AllSides' calibration half; this one for 13.4%).
        stranger = entry is None
        rescued = meaning_rescue(
            article,
            entry,
            story_article(article, entry),
            meaning,
            story_id,
            MEANING_STRANGER_RESCUE_FLOOR if stranger else MEANING_RESCUE_FLOOR,
            timedelta(hours=MEANING_STRANGER_RESCUE_HOURS if stranger else MEANING_RESCUE_HOURS),
        )
    items: list[dict[str, Any]] = []
    listed: set[str] = set() if entry is None else {entry.id}
    sources: dict[str, int] = {}
    shown = [
        *(RelatedItem(entry=m, score=1.0, similarity=1.0) for m in members),
        *(RelatedItem(entry=m, score=nearby_score, similarity=nearby_score) for m in nearby),
        *rescued,
    ]
    for item in shown:
        items.append(item_json(item))
        listed.add(item.entry.id)
        sources[item.entry.source.title] = sources.get(item.entry.source.title, 0) + 1
    # With the article's story known, what the finder adds is of other stories: only its close matches.
    floor = FILL_MIN_SCORE if story_id is not None else 0.0
    fill = [
        item
        for item in found
        if item.entry.id not in listed
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


# --------------------------------------------------------------------------- meaning


#: Texts' meanings, by a digest of the text (an entry's words change only when it is updated, and then
#: so does the digest): 20,000 of them hold about 25 MB, and the texts themselves are not kept.
MEANINGS = Kept(size=20_000, seconds=math.inf)


def _meaning(text: str) -> Vector | None:
    key = hashlib.blake2b(text.encode(), digest_size=16).digest()
    return cast("Vector | None", MEANINGS.get(key, lambda: _embed(text)))


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


def closest_in_meaning(meaning: Vector | None, entries: Sequence[Entry]) -> list[Entry]:
    """Return the ``entries`` close enough in meaning to the article, in their order: from `MEANING_RATIO` of
    the closest one's similarity up (copies of its text aside); all of them when its meaning is unknown."""
    if meaning is None or not entries:
        return list(entries)
    scores = [similarity(meaning, entry_meaning(e)) for e in entries]
    # A copy of the article's own text (the asker's own article, a wire copy) sets no bar for the others.
    reference = max((score for score in scores if score < MEANING_COPY), default=0.0)
    least = MEANING_RATIO * reference
    return [e for e, score in zip(entries, scores, strict=True) if score >= least]


def meaning_rescue(
    article: ArticleQuery,
    entry: Entry | None,
    near: StoryArticle,
    meaning: Vector,
    own_story: str | None,
    floor: float,
    window: timedelta,
) -> list[RelatedItem]:
    """Return [the other outlet's article closest in meaning to an article nothing joined], among the members
    of the stories it is near in words (a looser rule than joining), from ``floor`` up and within ``window``
    of it; else []."""
    services = services_of(current_app)
    matches = services.stories.nearby(
        services.story_assigner,
        near,
        limit=MEANING_RESCUE_STORIES,
        threshold=MEANING_RESCUE_WORDS,
        min_shared=1,
        exclude=own_story,
    )
    when = near.published_at
    # Stories whose span is outside the window have no member in it: not read at all. Standing stories
    # only (a merged one leaves the term index `nearby` reads): no alias to resolve. Their members are
    # read in one query and the chosen ones' entries in another, not story by story.
    stories = [
        match.story.id
        for match in matches
        if match.story.last_seen >= when - window and match.story.first_seen <= when + window
    ]
    rows = services.stories.member_rows(stories) if stories else {}
    chosen = [
        entry_id
        for story in stories
        for entry_id in one_per_outlet(
            others_than_own(reversed(rows.get(story, [])), article, entry), entry, MEANING_RESCUE_MEMBERS
        )
    ]
    found = services.store.get_entries(chosen) if chosen else {}
    best: tuple[float, Entry] | None = None
    for entry_id in chosen:
        member = found.get(entry_id)
        if member is None or abs(member.published_at - when) > window:
            continue
        score = similarity(meaning, entry_meaning(member))
        if score >= floor and (best is None or score > best[0]):
            best = (score, member)
    if best is None:
        return []
    return [RelatedItem(entry=best[1], score=MEANING_RESCUE_SCORE, similarity=best[0])]
