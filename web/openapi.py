"""The OpenAPI 3.1 document of the whole site (search and entries here); tests check it against what the server does."""

from __future__ import annotations

from typing import Any

from index.search import MAX_PER_PAGE, SORTS

_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_DATE_TIME = {"type": "string", "format": "date-time"}


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _object(properties: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(properties)
    return schema


_FACET_VALUE = _object({"value": _STRING, "count": {"type": "integer", "minimum": 0}})
#: An article link: null when the feed gave no usable link of its own (the entry is flagged url_missing).
_LINK = {"type": ["string", "null"], "description": "The article's link; null when the feed gave none."}
_DUPLICATE = _object({"id": _STRING, "url": _LINK, "title": _STRING, "source": _STRING, "published_at": _DATE_TIME})
_HIT = _object(
    {
        "id": _STRING,
        "story_id": {**_NULLABLE_STRING, "description": "The story it belongs to (/api/v1/stories/{id})."},
        "url": _LINK,
        "title": _STRING,
        "title_html": {"type": "string", "description": "The title with query terms in <mark>, HTML-escaped."},
        "source": _STRING,
        "published_at": _DATE_TIME,
        "snippet": {"type": "string", "description": "HTML-escaped passage with query terms in <mark>."},
        "score": {"type": "number"},
        "language": _NULLABLE_STRING,
        "tags": _array(_STRING),
        "duplicate_count": {"type": "integer", "minimum": 0, "description": "Copies from other outlets in all."},
        "duplicates": _array(_DUPLICATE),
    }
)
_SEARCH_RESULTS = _object(
    {
        "query": _STRING,
        "total": {"type": "integer", "minimum": 0, "description": "Matching entries, before collapsing copies."},
        "total_groups": {"type": "integer", "minimum": 0, "description": "Results after collapsing copies."},
        "page": {"type": "integer", "minimum": 1},
        "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
        "pages": {"type": "integer", "minimum": 1},
        "sort": {"type": "string", "enum": list(SORTS)},
        "relaxed": {"type": "boolean", "description": "No result had every word; these have any of them."},
        "suggestion": {"type": ["string", "null"], "description": "A respelled query (did you mean)."},
        "notices": _array(_STRING),
        "hits": _array(_HIT),
        "facets": _object(
            {
                "source": _array(_FACET_VALUE),
                "tag": _array(_FACET_VALUE),
                "lang": _array(_FACET_VALUE),
                "date": _array(
                    _object({"value": _STRING, "label": _STRING, "count": {"type": "integer", "minimum": 0}})
                ),
            }
        ),
    }
)
_ERROR = _object({"error": _STRING, "message": _STRING})
_ENTRY = _object(
    {
        "id": _STRING,
        "url": _LINK,
        "title": _STRING,
        "authors": _array(_STRING),
        "published_at": _DATE_TIME,
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
        "summary": _STRING,
        "text": _STRING,
        "image": {"type": ["object", "null"]},
        "tags": _array(_STRING),
        "language": _NULLABLE_STRING,
        "word_count": {"type": "integer"},
        "source": _object({"feed_url": _STRING, "title": _STRING, "site_url": _NULLABLE_STRING}),
        "flags": _array(_STRING),
        "content_html": _STRING,
        "fingerprint": {"type": "integer"},
        "story_id": {**_NULLABLE_STRING, "description": "The story it belongs to (/api/v1/stories/{id})."},
    }
)


def _param(name: str, description: str, schema: dict[str, Any], *, repeat: bool = False) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "required": False, "description": description}
    param["schema"] = _array(schema) if repeat else schema
    if repeat:
        param["explode"] = True
    return param


#: The query parameters of GET /search, in the order the server reads them.
SEARCH_PARAMETERS = [
    _param(
        "q",
        'Query: words (AND), "phrases", OR, -excluded, title:, author:, source:/site:, tag:, lang:, '
        'after:2024-05-01, before:, date:"past week", word~ (fuzzy), word* (prefix).',
        {"type": "string", "maxLength": 2000},
    ),
    _param("source", "Only these outlets (names as the source facet lists them).", _STRING, repeat=True),
    _param("tag", "Only entries with any of these tags.", _STRING, repeat=True),
    _param("lang", "Only entries in these languages (ISO 639-1).", _STRING, repeat=True),
    _param("from", "Published on or after this date (YYYY-MM-DD, YYYY-MM or YYYY).", _STRING),
    _param("to", "Published on or before this date (YYYY-MM-DD, YYYY-MM or YYYY).", _STRING),
    _param("sort", "Result order.", {"type": "string", "enum": list(SORTS), "default": "relevance"}),
    _param("page", "1-based page number.", {"type": "integer", "minimum": 1, "default": 1}),
    _param(
        "per_page",
        f"Results per page; larger values are capped at {MAX_PER_PAGE}.",
        {"type": "integer", "minimum": 1, "default": 20},
    ),
    _param("collapse", "Collapse copies of a story from other outlets (1) or not (0).", {"enum": ["1", "0"]}),
]


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


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
                        "200": _json_response("A page of results with facets.", _SEARCH_RESULTS),
                        "400": _json_response(
                            "A parameter is invalid, or the query asks for more work than the server allows "
                            "(error query_too_complex); the message says which.",
                            _ERROR,
                        ),
                    },
                }
            },
            "/api/v1/entries/{entry_id}": {
                "get": {
                    "operationId": "getEntry",
                    "summary": "One entry, with its content",
                    "parameters": [{"name": "entry_id", "in": "path", "required": True, "schema": _STRING}],
                    "responses": {
                        "200": _json_response("The entry.", _ENTRY),
                        "404": _json_response("No entry has this id.", _ERROR),
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": _json_response("The OpenAPI document.", {"type": "object"})},
                }
            },
        },
        "components": {"schemas": {"SearchResults": _SEARCH_RESULTS, "Entry": _ENTRY, "Error": _ERROR}},
    }
    from .openapi_more import more_paths
    from .openapi_pages import page_paths
    from .openapi_stories import story_paths

    document["paths"].update(more_paths())
    document["paths"].update(page_paths())
    document["paths"].update(story_paths())
    return document
