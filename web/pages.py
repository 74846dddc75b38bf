"""HTML pages for readers."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, render_template, request

from aggregator.errors import QueryError
from index.search import search

from .app import services_of

pages = Blueprint("pages", __name__)


@pages.get("/")
def search_page() -> Any:
    services = services_of(current_app)
    query = request.args.get("q", "")
    error = None
    results = None
    try:
        page = max(int(request.args.get("page", "1") or 1), 1)
    except ValueError:
        page = 1
    if query.strip():
        try:
            results = search(services.reader, services.store, query, page=page, per_page=20)
        except QueryError as exc:
            error = str(exc)
    return render_template("pages/search.html", query=query, results=results, error=error)


@pages.get("/entries/<entry_id>")
def entry_page(entry_id: str) -> Any:
    from .related import item_json, related_finder, safe_link

    entry = services_of(current_app).store.get_entry(entry_id)
    if entry is None:
        abort(404)
    # Related coverage comes from the derived index; the article itself comes from the store.
    related = [item_json(item) for item in related_finder(current_app).for_entry(entry, limit=5)]
    return render_template("pages/entry.html", entry=entry, related=related, source_link=safe_link(entry.url))
