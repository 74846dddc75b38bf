"""HTML pages for readers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from aggregator.errors import QueryError
from index.search.engine import SearchHit
from index.search.facets import DATE_BUCKETS
from index.search.latest import newest_ids
from index.search.query import SORTS

from .api import SearchRequest, run_search, search_request
from .front import story_path
from .search_groups import StoryHit, group_by_story
from .services import services_of

pages = Blueprint("pages", __name__)

#: Language codes readers see spelled out in the language facet.
LANGUAGE_LABELS = {"en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian"}
#: The search arguments an article link carries, so the article page can link back to the same results.
SEARCH_KEYS = ("q", "source", "tag", "lang", "from", "to", "sort", "page")
#: The arguments that make a request to / a search rather than the front page.
_FILTER_KEYS = ("source", "tag", "lang", "from", "to")


def search_args(args: Any) -> dict[str, list[str]]:
    """Return the search arguments among ``args`` (empty values left out), to carry into article links."""
    return {key: values for key in SEARCH_KEYS if (values := [v for v in args.getlist(key) if v.strip()])}


def search_url(args: Any, **changes: Any) -> str:
    """Return the search page URL for the current arguments with some changed (None removes one)."""
    merged: dict[str, Any] = {key: args.getlist(key) for key in args}
    merged.pop("page", None)  # any change of query or filters starts again at page 1
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return url_for("pages.search_page", **{k: v for k, v in merged.items() if v not in ([], "", [""])})


def toggle_url(args: Any, key: str, value: str) -> str:
    """Return the URL that adds ``value`` to a repeatable filter, or removes it when already on."""
    current = args.getlist(key)
    changed = [v for v in current if v != value] if value in current else [*current, value]
    return search_url(args, **{key: changed or None})


@pages.get("/")
def search_page() -> Any:
    args = request.args
    error = None
    results = None
    wanted: SearchRequest | None = None
    try:
        wanted = search_request(args)
        if wanted.q.strip() or any(v.strip() for k in _FILTER_KEYS for v in args.getlist(k)):
            results = run_search(wanted)
    except QueryError as exc:
        error = str(exc)
    if results is None and error is None:
        return front_page()
    services = services_of(current_app)
    now = datetime.now(UTC)
    date_links = [
        (key, label, (now - span).strftime("%Y-%m-%d"))
        for key, label, span in DATE_BUCKETS
        if span >= timedelta(days=1)
    ]
    return (
        render_template(
            "pages/search.html",
            query=args.get("q", ""),
            results=results,
            wanted=wanted,
            error=error,
            args=args,
            sorts=SORTS,
            search_url=search_url,
            toggle_url=toggle_url,
            date_links=date_links,
            language_labels=LANGUAGE_LABELS,
            feed_args={k: v for k, v in args.to_dict(flat=False).items() if k != "page"},
            back_args=search_args(args),
            groups=story_groups(results.hits) if results is not None else [],
            story_path=story_path,
            # An install that has indexed nothing yet finds nothing: say so, rather than suggest spellings.
            nothing_indexed=results is not None and not results.total and not newest_ids(services.index_reader, 1),
        ),
        400 if error else 200,
    )


def story_groups(hits: Sequence[SearchHit]) -> list[StoryHit]:
    """Return a results page's hits grouped by story (see `group_by_story`)."""
    services = services_of(current_app)
    story_ids = services.stories.stories_of([hit.entry.id for hit in hits]) if hits else {}
    outlets = {
        story_id: row.outlet_count
        for story_id in set(story_ids.values())
        if (row := services.stories.story_row(story_id)) is not None
    }
    return group_by_story(hits, story_ids, outlets, services.config.stories.min_outlets)


def front_page() -> Any:
    """Return the front page: top stories, latest articles and topic sections (a welcome when empty)."""
    from .front import FrontCache, build_front_page, story_path
    from .stories import top_cards
    from .versions import data_version

    services = services_of(current_app)
    cache: FrontCache = current_app.extensions.setdefault("newsdesk.front", FrontCache())
    front = cache.page(data_version(services), lambda: build_front_page(services, stories=top_cards(services)))
    return render_template("pages/front.html", front=front, story_path=story_path)


@pages.get("/search")
def search_alias() -> Any:
    """Redirect /search?q=... (the address readers and browsers' site search guess) to the search page, /?q=...."""
    target = url_for("pages.search_page")
    query = request.query_string.decode("latin-1")
    return redirect(f"{target}?{query}" if query else target, code=301)


@pages.get("/entries/<entry_id>")
def entry_page(entry_id: str) -> Any:
    from .related import kept_related_items, query_for_entry, safe_link

    entry = services_of(current_app).store.get_entry(entry_id)
    if entry is None:
        abort(404)
    # Related coverage comes from the derived index; the article itself comes from the store, so an
    # index problem costs the sidebar, never the article.
    try:
        related = kept_related_items(query_for_entry(entry), entry, 5)
    except Exception:
        current_app.logger.exception("related coverage failed for entry %s", entry_id)
        related = []
    back_args = search_args(request.args)
    return render_template(
        "pages/entry.html",
        entry=entry,
        related=related,
        source_link=safe_link(entry.url),
        back_args=back_args,
        back_query=" ".join(back_args.get("q", [])),
    )
