"""JSON API under /api/v1: search, entries, and the OpenAPI document describing them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request

from aggregator.errors import QueryError
from index.search.engine import Filters, SearchHit, SearchResults, search
from index.search.facets import Facets
from index.search.query import MAX_PER_PAGE, SORTS

from .dates import date_bound
from .openapi import openapi_document
from .serialize import article_ref, entry_json, entry_link, iso
from .services import Services, services_of

api = Blueprint("api", __name__, url_prefix="/api/v1")


def int_arg(name: str, default: int, *, low: int, high: int | None = None) -> int:
    """Return an integer query argument, or raise QueryError naming it."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f"{name} must be an integer, got {raw!r}") from None
    if value < low:
        raise QueryError(f"{name} must be at least {low}")
    return min(value, high) if high is not None else value


@dataclass(frozen=True)
class SearchRequest:
    """A search as the web surfaces (API, page, feeds) read it from query arguments."""

    #: The query text.
    q: str
    #: Filters from the source/tag/lang/from/to arguments.
    filters: Filters
    #: relevance, newest or oldest.
    sort: str
    #: 1-based page.
    page: int
    #: Results per page (at most MAX_PER_PAGE).
    per_page: int
    #: Collapse copies of a story into one result.
    collapse: bool


#: Control characters (and XML's forbidden code points) mean nothing in a query: read as spaces. Kept, they
#: broke the search feeds (lxml refuses them: a 500) and were echoed into JSON and pages.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def search_request(args: Any, *, per_page: int = 20) -> SearchRequest:
    """Return the SearchRequest in a request's arguments; raise QueryError naming a bad argument."""
    sort = (args.get("sort") or "relevance").strip().lower()
    if sort not in SORTS:
        raise QueryError(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
    collapse_raw = (args.get("collapse") or "1").strip().lower()
    if collapse_raw not in ("1", "0", "true", "false", "yes", "no"):
        raise QueryError(f"collapse must be 1 or 0, got {collapse_raw!r}")

    def values(name: str) -> tuple[str, ...]:
        return tuple(v.strip() for v in args.getlist(name) if v.strip())

    return SearchRequest(
        # Not cut here: search() refuses a query longer than search.max_query_length with a message.
        q=_CONTROL.sub(" ", args.get("q") or ""),
        filters=Filters(
            sources=values("source"),
            tags=values("tag"),
            languages=tuple(v.lower() for v in values("lang")),
            date_from=date_bound(args.get("from"), "from", end=False),
            date_to=date_bound(args.get("to"), "to", end=True),
        ),
        sort=sort,
        page=int_arg("page", 1, low=1, high=10_000),
        per_page=int_arg("per_page", per_page, low=1, high=MAX_PER_PAGE),
        collapse=collapse_raw in ("1", "true", "yes"),
    )


def run_search(wanted: SearchRequest, services: Services | None = None, *, everything: bool = False) -> SearchResults:
    """Return the results of a SearchRequest against a process's index and store (the current app's by default).

    ``everything``: an empty query lists every entry the filters keep (GET /api/v1/entries).
    """
    services = services or services_of(current_app)
    return search(
        services.index_reader,
        services.store,
        wanted.q,
        page=wanted.page,
        per_page=wanted.per_page,
        filters=wanted.filters,
        sort=wanted.sort,
        collapse=wanted.collapse,
        ranking=services.ranking,
        limits=services.query_limits,
        everything=everything,
    )


def hit_json(hit: SearchHit, story_id: str | None = None) -> dict[str, Any]:
    """Return the public JSON form of a search hit (``story_id``: the story it belongs to, if any)."""
    entry = hit.entry
    return {
        "id": entry.id,
        "story_id": story_id,
        # None for an entry whose feed gave no usable link (url_missing; entry.url is the site's home page).
        "url": entry_link(entry),
        "title": entry.title,
        "title_html": hit.title_html,
        "source": entry.source.title,
        "published_at": iso(entry.published_at),
        "snippet": hit.snippet,
        "score": round(hit.score, 4),
        "language": entry.language,
        "tags": list(entry.tags),
        "duplicate_count": hit.duplicate_count,
        "duplicates": [article_ref(d.entry) for d in hit.duplicates],
    }


def facets_json(facets: Facets) -> dict[str, Any]:
    """Return the public JSON form of facet counts."""

    def values(items: Any) -> list[dict[str, Any]]:
        return [{"value": f.value, "count": f.count} for f in items]

    return {
        "source": values(facets.sources),
        "tag": values(facets.tags),
        "lang": values(facets.languages),
        "date": [{"value": f.value, "label": f.label, "count": f.count} for f in facets.dates],
    }


def results_json(
    wanted: SearchRequest, results: SearchResults, story_ids: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Return the public JSON form of a page of results (the API and `newsdesk search --json`)."""
    story_ids = story_ids or {}
    return {
        "query": wanted.q,
        "total": results.total,
        "total_groups": results.total_groups,
        "page": results.page,
        "per_page": results.per_page,
        "pages": results.pages,
        "sort": results.sort,
        "relaxed": results.relaxed,
        "suggestion": results.suggestion,
        "notices": list(results.notices),
        "hits": [hit_json(hit, story_ids.get(hit.entry.id)) for hit in results.hits],
        "facets": facets_json(results.facets),
    }


@api.get("/search")
def search_api() -> Any:
    wanted = search_request(request.args)
    results = run_search(wanted)
    stories = services_of(current_app).stories.stories_of([hit.entry.id for hit in results.hits])
    return jsonify(results_json(wanted, results, stories))


@api.get("/entries")
def entries_api() -> Any:
    """The newest entries (or oldest with sort=oldest), every one unless filters narrow them; no query."""
    if (request.args.get("q") or "").strip():
        raise QueryError("/api/v1/entries lists entries without a query: search with /api/v1/search?q=")
    args = request.args.copy()
    args.setdefault("sort", "newest")
    args.setdefault("collapse", "0")
    if (args.get("sort") or "").strip().lower() == "relevance":
        raise QueryError("sort must be newest or oldest here: a listing has no query to rank by")
    wanted = search_request(args)
    results = run_search(wanted, everything=True)
    stories = services_of(current_app).stories.stories_of([hit.entry.id for hit in results.hits])
    listed = results_json(wanted, results, stories)
    return jsonify(
        {
            "total": listed["total"],
            "total_groups": listed["total_groups"],
            "page": listed["page"],
            "per_page": listed["per_page"],
            "pages": listed["pages"],
            "sort": listed["sort"],
            "entries": [
                {key: value for key, value in hit.items() if key not in ("score", "title_html")}
                for hit in listed["hits"]
            ],
            "facets": listed["facets"],
        }
    )


@api.get("/entries/<entry_id>")
def entry_api(entry_id: str) -> Any:
    entry = services_of(current_app).store.get_entry(entry_id)
    if entry is None:
        abort(404, description=f"no entry with id {entry_id!r}")
    data = entry_json(entry, full=True)
    data["story_id"] = services_of(current_app).stories.stories_of([entry.id]).get(entry.id)
    return jsonify(data)


@api.get("/openapi.json")
def openapi_api() -> Any:
    return jsonify(openapi_document(request.url_root.rstrip("/")))
