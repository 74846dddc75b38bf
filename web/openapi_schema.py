"""The vocabulary the OpenAPI modules share: JSON Schema pieces, response and parameter helpers, search parameters.

openapi.py assembles the document from its own paths and those of openapi_more.py and openapi_pages.py;
all three build on this module, and none imports another's private names.
"""

from __future__ import annotations

from typing import Any

from index.search.query import MAX_PER_PAGE, SORTS

STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
DATE_TIME = {"type": "string", "format": "date-time"}


def array(items: dict[str, Any]) -> dict[str, Any]:
    """Return the schema of an array of ``items``."""
    return {"type": "array", "items": items}


def object_schema(properties: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    """Return the schema of an object with ``properties`` (all required unless told otherwise)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(properties)
    return schema


#: An article link: null when the feed gave no usable link of its own (the entry is flagged url_missing).
LINK = {"type": ["string", "null"], "description": "The article's link; null when the feed gave none."}
ERROR = object_schema({"error": STRING, "message": STRING})


def query_parameter(name: str, description: str, schema: dict[str, Any], *, repeat: bool = False) -> dict[str, Any]:
    """Return an optional query parameter (an exploded array of ``schema`` when it may ``repeat``)."""
    param: dict[str, Any] = {"name": name, "in": "query", "required": False, "description": description}
    param["schema"] = array(schema) if repeat else schema
    if repeat:
        param["explode"] = True
    return param


#: The query parameters of GET /search, in the order the server reads them.
SEARCH_PARAMETERS = [
    query_parameter(
        "q",
        'Query: words (AND), "phrases", OR, -excluded, title:, author:, source:/site:, tag:, lang:, '
        'after:2024-05-01, before:, date:"past week", word~ (fuzzy), word* (prefix).',
        {"type": "string", "maxLength": 2000},
    ),
    query_parameter("source", "Only these outlets (names as the source facet lists them).", STRING, repeat=True),
    query_parameter("tag", "Only entries with any of these tags.", STRING, repeat=True),
    query_parameter("lang", "Only entries in these languages (ISO 639-1).", STRING, repeat=True),
    query_parameter("from", "Published on or after this date (YYYY-MM-DD, YYYY-MM or YYYY).", STRING),
    query_parameter("to", "Published on or before this date (YYYY-MM-DD, YYYY-MM or YYYY).", STRING),
    query_parameter("sort", "Result order.", {"type": "string", "enum": list(SORTS), "default": "relevance"}),
    query_parameter("page", "1-based page number.", {"type": "integer", "minimum": 1, "default": 1}),
    query_parameter(
        "per_page",
        f"Results per page; larger values are capped at {MAX_PER_PAGE}.",
        {"type": "integer", "minimum": 1, "default": 20},
    ),
    query_parameter("collapse", "Collapse copies of a story from other outlets (1) or not (0).", {"enum": ["1", "0"]}),
]


def json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Return a response whose JSON body follows ``schema``."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}
