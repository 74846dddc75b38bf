"""The OpenAPI document describes what the server really answers, endpoint by endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from flask import Flask

from web.app import services_of

from .support.httpserver import FeedServer
from .test_related_api import OTHER_OUTLET, STORY_OUTLETS, build_newsroom, entry_of, newsroom_config


@pytest.fixture
def app(tmp_path: Path, feed_server: FeedServer) -> Iterator[Flask]:
    application = build_newsroom(
        newsroom_config(tmp_path, rate_limit_per_minute=1000), feed_server, (*STORY_OUTLETS, OTHER_OUTLET)
    )
    yield application
    services_of(application).close()


def response_schema(document: dict[str, Any], path: str, status: int) -> dict[str, Any]:
    operation = document["paths"][path]["get"]
    schema: dict[str, Any] = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    return schema


def test_every_endpoint_answers_as_documented(app: Flask) -> None:
    client = app.test_client()
    document = client.get("/api/v1/openapi.json").get_json()
    article = entry_of(services_of(app).store, "valley-post")
    cases = [
        ("/search", "/api/v1/search?q=dam", 200),
        ("/search", "/api/v1/search?q=dam&page=0", 400),
        ("/entries/{entry_id}", f"/api/v1/entries/{article.id}", 200),
        ("/entries/{entry_id}", "/api/v1/entries/none", 404),
        ("/feeds", "/api/v1/feeds", 200),
        ("/related", f"/api/v1/related?entry={article.id}", 200),
        ("/related", "/api/v1/related", 400),
        ("/related", "/api/v1/related?entry=none", 404),
        ("/oembed", f"/oembed?url={article.url}", 200),
        ("/oembed", "/oembed", 400),
        ("/oembed", "/oembed?url=https://nowhere.example/x", 404),
        ("/oembed", f"/oembed?url={article.url}&format=xml", 501),
        ("/healthz", "/healthz", 200),
        ("/readyz", "/readyz", 200),
    ]
    for path, url, status in cases:
        answer = client.get(url)
        assert answer.status_code == status, (url, answer.get_data(as_text=True))
        jsonschema.validate(answer.get_json(), response_schema(document, path, status))
    # The related answer really has items, so the item schema was exercised.
    assert client.get(f"/api/v1/related?entry={article.id}").get_json()["items"]


def test_the_document_is_strict_enough_to_catch_a_drift(app: Flask) -> None:
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    answer = app.test_client().get("/api/v1/feeds").get_json()
    del answer["feeds"][0]["last_status"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(answer, response_schema(document, "/feeds", 200))


def test_root_endpoints_declare_the_site_root(app: Flask) -> None:
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    assert document["servers"][0]["url"].endswith("/api/v1")
    for path in ("/oembed", "/healthz", "/readyz", "/metrics"):
        assert not document["paths"][path]["servers"][0]["url"].endswith("/api/v1")
