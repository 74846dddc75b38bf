"""OpenAPI paths of stories: the story API, the story page and its Atom feed."""

from __future__ import annotations

from typing import Any

from .openapi import _DATE_TIME, _ERROR, _LINK, _NULLABLE_STRING, _STRING, _array, _json_response, _object, _param

_STORY_ID = {"name": "story_id", "in": "path", "required": True, "schema": _STRING}
_MOVED = {"description": "A merged story's id: Location names the story it is part of now."}

STORY_ARTICLE = _object(
    {
        "id": _STRING,
        "url": _LINK,
        "title": _STRING,
        "source": _STRING,
        "published_at": _DATE_TIME,
        "teaser": _STRING,
        "first": {"type": "boolean", "description": "True for the first report of the story."},
    }
)
STORY = _object(
    {
        "id": _STRING,
        "url": {"type": "string", "description": "The story's page."},
        "title": {"type": "string", "description": "The first report's headline."},
        "outlet_count": {"type": "integer", "minimum": 0},
        "article_count": {"type": "integer", "minimum": 0},
        "first_seen": _DATE_TIME,
        "last_seen": _DATE_TIME,
        "image": _NULLABLE_STRING,
        "articles": {**_array(STORY_ARTICLE), "description": "Its articles, oldest first (the list caps them at 10)."},
    }
)
STORY_LIST = _object(
    {
        "total": {"type": "integer", "minimum": 0},
        "page": {"type": "integer", "minimum": 1},
        "per_page": {"type": "integer", "minimum": 1, "maximum": 50},
        "pages": {"type": "integer", "minimum": 1},
        "stories": _array(STORY),
    }
)
STORY_PARAMETERS = [
    _param("tag", "Only stories with an article carrying any of these tags.", _STRING, repeat=True),
    _param("lang", "Only stories with an article in any of these languages (ISO 639-1).", _STRING, repeat=True),
    _param("source", "Only stories covered by any of these outlets (feed title or key).", _STRING, repeat=True),
    _param("since", "Only stories reported on or after this date (YYYY-MM-DD) or date-time.", _STRING),
    _param("page", "1-based page number.", {"type": "integer", "minimum": 1, "default": 1}),
    _param("per_page", "Stories per page; capped at 50.", {"type": "integer", "minimum": 1, "default": 10}),
]


def _page(description: str, media_type: str) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def _not_found() -> dict[str, Any]:
    return {
        "description": "No story has this id.",
        "content": {"text/html": {"schema": {"type": "string"}}, "application/json": {"schema": _ERROR}},
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
                    "200": _json_response("A page of stories.", STORY_LIST),
                    "400": _json_response("A parameter is invalid; the message says which.", _ERROR),
                },
            }
        },
        "/api/v1/stories/{story_id}": {
            "get": {
                "operationId": "getStory",
                "summary": "One story with every article, oldest first",
                "parameters": [_STORY_ID],
                "responses": {
                    "200": _json_response("The story.", STORY),
                    "301": _MOVED,
                    "404": _json_response("No story has this id.", _ERROR),
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
