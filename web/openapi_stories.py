"""OpenAPI paths of stories: the story API, the story page and its Atom feed."""

from __future__ import annotations

from typing import Any

from .openapi_schema import (
    DATE_TIME,
    ERROR,
    LINK,
    NULLABLE_STRING,
    STRING,
    array,
    json_response,
    object_schema,
    query_parameter,
)

_STORY_ID = {"name": "story_id", "in": "path", "required": True, "schema": STRING}
_MOVED = {"description": "A merged story's id: Location names the story it is part of now."}

STORY_ARTICLE = object_schema(
    {
        "id": STRING,
        "url": LINK,
        "title": STRING,
        "source": STRING,
        "published_at": DATE_TIME,
        "teaser": STRING,
        "first": {"type": "boolean", "description": "True for the first report of the story."},
    }
)
STORY = object_schema(
    {
        "id": STRING,
        "url": {"type": "string", "description": "The story's page."},
        "title": {"type": "string", "description": "The first report's headline."},
        "outlet_count": {"type": "integer", "minimum": 0},
        "article_count": {"type": "integer", "minimum": 0},
        "first_seen": DATE_TIME,
        "last_seen": DATE_TIME,
        "image": NULLABLE_STRING,
        "articles": {**array(STORY_ARTICLE), "description": "Its articles, oldest first (the list caps them at 10)."},
    }
)
STORY_LIST = object_schema(
    {
        "total": {"type": "integer", "minimum": 0},
        "page": {"type": "integer", "minimum": 1},
        "per_page": {"type": "integer", "minimum": 1, "maximum": 50},
        "pages": {"type": "integer", "minimum": 1},
        "stories": array(STORY),
    }
)
STORY_PARAMETERS = [
    query_parameter("tag", "Only stories with an article carrying any of these tags.", STRING, repeat=True),
    query_parameter("lang", "Only stories with an article in any of these languages (ISO 639-1).", STRING, repeat=True),
    query_parameter("source", "Only stories covered by any of these outlets (feed title or key).", STRING, repeat=True),
    query_parameter("since", "Only stories reported on or after this date (YYYY-MM-DD) or date-time.", STRING),
    query_parameter("page", "1-based page number.", {"type": "integer", "minimum": 1, "default": 1}),
    query_parameter("per_page", "Stories per page; capped at 50.", {"type": "integer", "minimum": 1, "default": 10}),
]


def _page(description: str, media_type: str) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def _not_found() -> dict[str, Any]:
    return {
        "description": "No story has this id.",
        "content": {"text/html": {"schema": {"type": "string"}}, "application/json": {"schema": ERROR}},
    }


def story_paths() -> dict[str, Any]:
    """Return the path items of the story API, the story page and its feed."""
    return {
        "/api/v1/stories": {
            "get": {
                "operationId": "listStories",
                "summary": "Top stories: covered by enough outlets, by breadth then recency",
                "parameters": STORY_PARAMETERS,
                "responses": {
                    "200": json_response("A page of stories.", STORY_LIST),
                    "400": json_response("A parameter is invalid; the message says which.", ERROR),
                },
            }
        },
        "/api/v1/stories/{story_id}": {
            "get": {
                "operationId": "getStory",
                "summary": "One story with every article, oldest first",
                "parameters": [_STORY_ID],
                "responses": {
                    "200": json_response("The story.", STORY),
                    "301": _MOVED,
                    "404": json_response("No story has this id.", ERROR),
                },
            }
        },
        "/stories/{story_id}": {
            "get": {
                "operationId": "storyPage",
                "summary": "A story's page (HTML): every outlet's article on a timeline",
                "parameters": [_STORY_ID],
                "responses": {"200": _page("The story page.", "text/html"), "301": _MOVED, "404": _not_found()},
            }
        },
        "/stories/{story_id}.atom": {
            "get": {
                "operationId": "storyAtom",
                "summary": "A story's articles as an Atom feed (follow a developing story)",
                "parameters": [_STORY_ID],
                "responses": {
                    "200": _page("The Atom feed.", "application/atom+xml"),
                    "301": _MOVED,
                    "404": _not_found(),
                },
            }
        },
    }
