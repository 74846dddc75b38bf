"""OpenAPI paths for what is not JSON: the HTML pages, search feeds, OpenSearch and the embeds.

Documented so the document covers every route the server has (a test checks it against the URL map),
and so a fuzzer driven by it reaches them too.
"""

from __future__ import annotations

from typing import Any

from .openapi_more import RELATED_PARAMETERS
from .openapi_schema import ERROR, SEARCH_PARAMETERS, STRING

_TEXT = {"type": "string"}


def _body(description: str, *media_types: str) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": _TEXT} for media in media_types}}


def _error_page(description: str) -> dict[str, Any]:
    """Return an error response: a page for browsers, JSON for clients that ask for it (Accept)."""
    answer = _body(description, "text/html")
    answer["content"]["application/json"] = {"schema": ERROR}
    return answer


_ENTRY_ID = {"name": "entry_id", "in": "path", "required": True, "schema": STRING}


def page_paths() -> dict[str, Any]:
    """Return the path items of the HTML pages, the search feeds, OpenSearch and the embeds."""
    return {
        "/": {
            "get": {
                "operationId": "searchPage",
                "summary": "The search page (HTML); the same parameters as /api/v1/search",
                "parameters": SEARCH_PARAMETERS,
                "responses": {
                    "200": _body("The search page, with results when a query or filter is given.", "text/html"),
                    "400": _body("The search page, saying which parameter or limit was wrong.", "text/html"),
                },
            }
        },
        "/entries/{entry_id}": {
            "get": {
                "operationId": "entryPage",
                "summary": "An entry's clean article page (HTML), with its related-coverage sidebar",
                "parameters": [_ENTRY_ID],
                "responses": {
                    "200": _body("The article page.", "text/html"),
                    "404": _error_page("No entry has this id."),
                },
            }
        },
        "/feeds": {
            "get": {
                "operationId": "feedsPage",
                "summary": "The operators' status page of every feed (HTML)",
                "responses": {"200": _body("The feeds page.", "text/html")},
            }
        },
        "/search": {
            "get": {
                "operationId": "searchAlias",
                "summary": "Redirects to the search page (/) with the same query string",
                "parameters": SEARCH_PARAMETERS,
                "responses": {"301": {"description": "Location: /?<the same query string>."}},
            }
        },
        "/search.atom": {
            "get": {
                "operationId": "searchAtom",
                "summary": "A search as an Atom feed (newest first unless sort says otherwise)",
                "parameters": SEARCH_PARAMETERS,
                "responses": {
                    "200": _body("The feed (RFC 4287, with OpenSearch counts).", "application/atom+xml"),
                    "400": _body("A parameter or limit was wrong; one line says which.", "text/plain"),
                },
            }
        },
        "/search.rss": {
            "get": {
                "operationId": "searchRss",
                "summary": "A search as an RSS 2.0 feed (newest first unless sort says otherwise)",
                "parameters": SEARCH_PARAMETERS,
                "responses": {
                    "200": _body("The feed.", "application/rss+xml"),
                    "400": _body("A parameter or limit was wrong; one line says which.", "text/plain"),
                },
            }
        },
        "/opensearch.xml": {
            "get": {
                "operationId": "openSearch",
                "summary": "OpenSearch 1.1 description, so browsers can add Newsdesk as a search engine",
                "responses": {"200": _body("The description.", "application/opensearchdescription+xml")},
            }
        },
        "/embed/related": {
            "get": {
                "operationId": "relatedFrame",
                "summary": "Related coverage as a page to show in an iframe on any site",
                "parameters": RELATED_PARAMETERS,
                "responses": {
                    status: _body(f"{description} (always the same neutral box for readers).", "text/html")
                    for status, description in (
                        ("200", "The related items, or a quiet empty box"),
                        ("400", "A parameter is missing or invalid"),
                        ("404", "No such entry or story, or an unknown url without title"),
                        ("429", "Rate limited; see Retry-After"),
                    )
                },
            }
        },
        "/embed.js": {
            "get": {
                "operationId": "embedScript",
                "summary": "The script embed: adds related coverage under a tagged element of any page",
                "responses": {
                    "200": _body("The script.", "text/javascript"),
                    "304": {"description": "Not modified (If-None-Match matched the ETag)."},
                },
            }
        },
    }
