"""The OpenAPI 3.1 document of the whole site (search and entries here); tests check it against what the server does."""

from __future__ import annotations

from typing import Any

from index.search.query import MAX_PER_PAGE, SORTS

from .openapi_more import more_paths
from .openapi_pages import page_paths
from .openapi_schema import (
    DATE_TIME,
    ERROR,
    LINK,
    NULLABLE_STRING,
    SEARCH_PARAMETERS,
    STRING,
    array,
    json_response,
    object_schema,
    query_parameter,
)
from .openapi_stories import story_paths

__all__ = ["SEARCH_PARAMETERS", "openapi_document"]

_FACET_VALUE = object_schema({"value": STRING, "count": {"type": "integer", "minimum": 0}})
_DUPLICATE = object_schema({"id": STRING, "url": LINK, "title": STRING, "source": STRING, "published_at": DATE_TIME})
_HIT = object_schema(
    {
        "id": STRING,
        "story_id": {**NULLABLE_STRING, "description": "The story it belongs to (/api/v1/stories/{id})."},
        "url": LINK,
        "title": STRING,
        "title_html": {"type": "string", "description": "The title with query terms in <mark>, HTML-escaped."},
        "source": STRING,
        "published_at": DATE_TIME,
        "snippet": {"type": "string", "description": "HTML-escaped passage with query terms in <mark>."},
        "score": {"type": "number"},
        "language": NULLABLE_STRING,
        "tags": array(STRING),
        "duplicate_count": {"type": "integer", "minimum": 0, "description": "Copies from other outlets in all."},
        "duplicates": array(_DUPLICATE),
    }
)
_SEARCH_RESULTS = object_schema(
    {
        "query": STRING,
        "total": {"type": "integer", "minimum": 0, "description": "Matching entries, before collapsing copies."},
        "total_groups": {"type": "integer", "minimum": 0, "description": "Results after collapsing copies."},
        "page": {"type": "integer", "minimum": 1},
        "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
        "pages": {"type": "integer", "minimum": 1},
        "sort": {"type": "string", "enum": list(SORTS)},
        "relaxed": {"type": "boolean", "description": "No result had every word; these have any of them."},
        "suggestion": {"type": ["string", "null"], "description": "A respelled query (did you mean)."},
        "notices": array(STRING),
        "hits": array(_HIT),
        "facets": object_schema(
            {
                "source": array(_FACET_VALUE),
                "tag": array(_FACET_VALUE),
                "lang": array(_FACET_VALUE),
                "date": array(
                    object_schema({"value": STRING, "label": STRING, "count": {"type": "integer", "minimum": 0}})
                ),
            }
        ),
    }
)
_LISTED = object_schema(
    {key: value for key, value in _HIT["properties"].items() if key not in ("score", "title_html")}
    | {"snippet": {"type": "string", "description": "HTML-escaped teaser: the text's first words."}}
)
_LISTING = object_schema(
    {
        "total": {"type": "integer", "minimum": 0, "description": "Entries the filters keep."},
        "total_groups": {"type": "integer", "minimum": 0, "description": "The same after collapsing copies."},
        "page": {"type": "integer", "minimum": 1},
        "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
        "pages": {"type": "integer", "minimum": 1},
        "sort": {"type": "string", "enum": ["newest", "oldest"]},
        "entries": array(_LISTED),
        "facets": _SEARCH_RESULTS["properties"]["facets"],
    }
)
_LISTING_PARAMETERS = [
    *(p for p in SEARCH_PARAMETERS if p["name"] not in ("q", "sort", "collapse")),
    query_parameter("sort", "Order.", {"type": "string", "enum": ["newest", "oldest"], "default": "newest"}),
    query_parameter(
        "collapse", "Collapse copies of a story from other outlets (1) or list every entry (0).", {"enum": ["1", "0"]}
    ),
]
_ENTRY = object_schema(
    {
        "id": STRING,
        "url": LINK,
        "title": STRING,
        "authors": array(STRING),
        "published_at": DATE_TIME,
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
        "summary": STRING,
        "text": STRING,
        "image": {"type": ["object", "null"]},
        "tags": array(STRING),
        "language": NULLABLE_STRING,
        "word_count": {"type": "integer"},
        "source": object_schema({"feed_url": STRING, "title": STRING, "site_url": NULLABLE_STRING}),
        "flags": array(STRING),
        "content_html": STRING,
        "fingerprint": {"type": "integer"},
        "story_id": {**NULLABLE_STRING, "description": "The story it belongs to (/api/v1/stories/{id})."},
    }
)


def openapi_document(root_url: str = "") -> dict[str, Any]:
    """Return the OpenAPI document of every endpoint of the site served at ``root_url`` (JSON API, feeds, pages, embeds).

    Paths are whole (/api/v1/search, /feeds, /embed/related) under one server, the site root: the
    API and the pages share names (/api/v1/feeds and /feeds), so a server at /api/v1 could not hold both.
    """
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Newsdesk API",
            "version": "1",
            "description": "Search everything Newsdesk aggregated, read entries and feeds, get related coverage, "
            "and the pages, feeds and embeds that show them.",
        },
        "servers": [{"url": root_url or "/"}],
        "paths": {
            "/api/v1/search": {
                "get": {
                    "operationId": "search",
                    "summary": "Search entries",
                    "parameters": SEARCH_PARAMETERS,
                    "responses": {
                        "200": json_response("A page of results with facets.", _SEARCH_RESULTS),
                        "400": json_response(
                            "A parameter is invalid, or the query asks for more work than the server allows "
                            "(error query_too_complex); the message says which.",
                            ERROR,
                        ),
                    },
                }
            },
            "/api/v1/entries": {
                "get": {
                    "operationId": "listEntries",
                    "summary": "Every entry, newest first, narrowed by the search filters; no query (q is refused)",
                    "parameters": _LISTING_PARAMETERS,
                    "responses": {
                        "200": json_response("A page of entries with facets.", _LISTING),
                        "400": json_response(
                            "A parameter is invalid (q given, a bad date...); the message says which.", ERROR
                        ),
                    },
                }
            },
            "/api/v1/entries/{entry_id}": {
                "get": {
                    "operationId": "getEntry",
                    "summary": "One entry, with its content",
                    "parameters": [{"name": "entry_id", "in": "path", "required": True, "schema": STRING}],
                    "responses": {
                        "200": json_response("The entry.", _ENTRY),
                        "404": json_response("No entry has this id.", ERROR),
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": json_response("The OpenAPI document.", {"type": "object"})},
                }
            },
        },
        "components": {"schemas": {"SearchResults": _SEARCH_RESULTS, "Entry": _ENTRY, "Error": ERROR}},
    }
    document["paths"].update(more_paths())
    document["paths"].update(page_paths())
    document["paths"].update(story_paths())
    return document
