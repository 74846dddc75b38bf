"""JSON API under /api/v1."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request

from aggregator.errors import QueryError
from index.search import search

from .app import services_of
from .serialize import entry_json, feed_json, iso

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


@api.get("/search")
def search_api() -> Any:
    services = services_of(current_app)
    results = search(
        services.reader,
        services.store,
        request.args.get("q", ""),
        page=int_arg("page", 1, low=1),
        per_page=int_arg("per_page", 20, low=1, high=100),
    )
    return jsonify(
        total=results.total,
        page=results.page,
        per_page=results.per_page,
        notices=list(results.notices),
        hits=[
            {
                "id": hit.entry.id,
                "url": hit.entry.url,
                "title": hit.entry.title,
                "source": hit.entry.source.title,
                "published_at": iso(hit.entry.published_at),
                "snippet": hit.snippet,
                "score": round(hit.score, 4),
            }
            for hit in results.hits
        ],
    )


@api.get("/entries/<entry_id>")
def entry_api(entry_id: str) -> Any:
    entry = services_of(current_app).store.get_entry(entry_id)
    if entry is None:
        abort(404, description=f"no entry with id {entry_id!r}")
    return jsonify(entry_json(entry, full=True))


@api.get("/feeds")
def feeds_api() -> Any:
    return jsonify(feeds=[feed_json(f) for f in services_of(current_app).store.list_feeds()])
