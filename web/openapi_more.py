"""OpenAPI paths for the JSON feeds, related-coverage, oEmbed and health endpoints (search lives in openapi.py)."""

from __future__ import annotations

from typing import Any

from .openapi_schema import DATE_TIME, ERROR, LINK, NULLABLE_STRING, STRING, array, json_response, object_schema

_INT = {"type": "integer"}
_NULLABLE_INT = {"type": ["integer", "null"]}
_NULLABLE_DATE_TIME = {"type": ["string", "null"], "format": "date-time"}

FEED = object_schema(
    {
        "id": _INT,
        "url": STRING,
        "key": STRING,
        "title": NULLABLE_STRING,
        "site_url": NULLABLE_STRING,
        "tags": array(STRING),
        "enabled": {"type": "boolean"},
        "disabled_reason": NULLABLE_STRING,
        "last_checked_at": _NULLABLE_DATE_TIME,
        "last_success_at": _NULLABLE_DATE_TIME,
        "last_status": {**_NULLABLE_INT, "description": "HTTP status of the last check (304 included)."},
        "last_error": {**NULLABLE_STRING, "description": "The last error in plain words; null after a success."},
        "consecutive_failures": {"type": "integer", "minimum": 0},
        "next_check_at": _NULLABLE_DATE_TIME,
        "retry_after_until": _NULLABLE_DATE_TIME,
        "entries_per_week": {"type": ["number", "null"]},
        "entry_count": {"type": "integer", "minimum": 0},
        "warnings": {
            **array(STRING),
            "description": "What the feed asks for that this installation cannot do (an optional feature whose "
            "library is missing), in plain words; empty when nothing.",
        },
    },
)
RELATED_ITEM = object_schema(
    {
        "id": STRING,
        "url": LINK,
        "title": STRING,
        "source": STRING,
        "published_at": DATE_TIME,
        "teaser": STRING,
        "score": {"type": "number"},
        "story_id": {**NULLABLE_STRING, "description": "The story it belongs to (/api/v1/stories/{id})."},
    }
)
OEMBED = object_schema(
    {
        "version": {"const": "1.0"},
        "type": {"const": "rich"},
        "provider_name": STRING,
        "provider_url": STRING,
        "title": STRING,
        "html": STRING,
        "width": _INT,
        "height": _INT,
        "cache_age": _INT,
    }
)
HEALTH = object_schema({"status": {"const": "ok"}, "uptime_seconds": {"type": "number", "minimum": 0}})
_CHECK = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}, "seconds": {"type": "number"}, "error": STRING},
    "required": ["ok", "seconds"],
}
READY = object_schema(
    {
        "status": {"enum": ["ok", "error"]},
        "entries": _NULLABLE_INT,
        "index": {"enum": ["ready", "empty"]},
        "checks": {
            "type": "object",
            "description": "One entry per check: store, index, scheduler (in `newsdesk run` only), polling, features.",
            "properties": {name: _CHECK for name in ("store", "index", "scheduler", "polling", "features")},
            "required": ["store", "index", "polling", "features"],
            "additionalProperties": False,
        },
    }
)


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema or STRING}


#: The parameters of related coverage, as JSON (/api/v1/related) and as the iframe embed (/embed/related).
RELATED_PARAMETERS = [
    _query("entry", "Id of a stored entry."),
    _query("url", "An article URL, matched to a stored entry by canonical URL (never fetched)."),
    _query("title", "Headline of an article Newsdesk does not have."),
    _query("text", "Its description or text."),
    _query("date", "Its publication time (ISO 8601; default now)."),
    _query("limit", "How many items (default 5, at most 20).", {"type": "integer", "minimum": 1}),
    _query(
        "story",
        "A story id (a merged story's old id resolves to the story it is part of now): lists the story's "
        "articles, one per outlet, newest first, wire copies once. Takes precedence over the other parameters.",
    ),
]


def more_paths() -> dict[str, Any]:
    """Return the path items of the JSON endpoints outside search: feeds, related coverage, oEmbed and health."""
    return {
        "/api/v1/feeds": {
            "get": {
                "operationId": "listFeeds",
                "summary": "Every feed and its polling state",
                "responses": {"200": json_response("The feeds.", object_schema({"feeds": array(FEED)}))},
            }
        },
        "/api/v1/related": {
            "options": {
                "operationId": "relatedPreflight",
                "summary": "CORS preflight: any site may read related coverage from a script",
                "responses": {"204": {"description": "Allowed: GET, with If-None-Match."}},
            },
            "get": {
                "operationId": "related",
                "summary": "Other outlets' coverage of the same story",
                "parameters": RELATED_PARAMETERS,
                "responses": {
                    "200": json_response(
                        "Related items, best first (empty when there is none).",
                        object_schema({"items": array(RELATED_ITEM)}),
                    ),
                    "304": {"description": "Not modified (If-None-Match matched the ETag)."},
                    "400": json_response("A parameter is missing or invalid.", ERROR),
                    "404": json_response("No such entry or story, or an unknown url without title.", ERROR),
                    "429": json_response("Rate limited; see Retry-After.", ERROR),
                },
            },
        },
        "/oembed": {
            "get": {
                "operationId": "oembed",
                "summary": "oEmbed (rich) for an article or an entry page",
                "parameters": [
                    _query("url", "Article URL or https://HOST/entries/<id>."),
                    _query("maxwidth", "Largest width in pixels.", {"type": "integer", "minimum": 1}),
                    _query("maxheight", "Largest height in pixels.", {"type": "integer", "minimum": 1}),
                    _query("format", "Only json is supported.", {"enum": ["json"]}),
                ],
                "responses": {
                    "200": json_response("The oEmbed response.", OEMBED),
                    "400": json_response("A parameter is missing or invalid.", ERROR),
                    "404": json_response("Newsdesk stores no article with this URL.", ERROR),
                    "501": json_response("A format other than json was asked for.", ERROR),
                },
            },
        },
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Liveness: the process answers (touches neither the database nor the index)",
                "responses": {"200": json_response("The process is up.", HEALTH)},
            },
        },
        "/readyz": {
            "get": {
                "operationId": "ready",
                "summary": "Readiness: store, index, scheduler, polling freshness, optional features",
                "responses": {
                    "200": json_response("Every check passed.", READY),
                    "503": json_response("A check failed; its `error` says why.", READY),
                },
            },
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics (only to the addresses in server.metrics_allow)",
                "responses": {
                    "200": {
                        "description": "Prometheus text format, or OpenMetrics when the Accept header asks for it.",
                        "content": {"text/plain": {"schema": STRING}},
                    },
                    "403": {"description": "The client's address is not in server.metrics_allow."},
                    "404": {"description": "Metrics are turned off (server.metrics_allow = [])."},
                },
            },
        },
    }
