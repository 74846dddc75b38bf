"""The OpenAPI document describes what the server really answers, endpoint by endpoint."""

from __future__ import annotations

import re
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
        ("/api/v1/search", "/api/v1/search?q=dam", 200),
        ("/api/v1/search", "/api/v1/search?q=dam&page=0", 400),
        ("/api/v1/entries", "/api/v1/entries", 200),
        ("/api/v1/entries", "/api/v1/entries?q=dam", 400),
        ("/api/v1/entries/{entry_id}", f"/api/v1/entries/{article.id}", 200),
        ("/api/v1/entries/{entry_id}", "/api/v1/entries/none", 404),
        ("/api/v1/feeds", "/api/v1/feeds", 200),
        ("/api/v1/related", f"/api/v1/related?entry={article.id}", 200),
        ("/api/v1/related", "/api/v1/related", 400),
        ("/api/v1/related", "/api/v1/related?entry=none", 404),
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
        jsonschema.validate(answer, response_schema(document, "/api/v1/feeds", 200))


def test_paths_are_whole_under_the_site_root(app: Flask) -> None:
    # The API and the pages share names (/api/v1/feeds and /feeds): one server, the site root, holds both.
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    assert document["servers"] == [{"url": "http://localhost"}]
    assert {"/api/v1/feeds", "/feeds", "/api/v1/entries/{entry_id}", "/entries/{entry_id}"} <= set(document["paths"])
    assert not any("servers" in item for item in document["paths"].values())


def documented_routes(app: Flask) -> set[tuple[str, str]]:
    """Return (OpenAPI path, method) for every route of the app but static files."""
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        methods = set(rule.methods or ()) - {"HEAD"}
        # Flask answers OPTIONS on every route by itself; only a route written for OPTIONS alone is ours.
        if methods != {"OPTIONS"}:
            methods.discard("OPTIONS")
        routes |= {(path, method.lower()) for method in methods}
    return routes


def test_every_route_is_documented(app: Flask) -> None:
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    routes = documented_routes(app)
    assert len(routes) >= 16
    missing = sorted(
        f"{method.upper()} {path}" for path, method in routes if method not in document["paths"].get(path, {})
    )
    assert missing == [], "routes missing from the OpenAPI document (web/openapi*.py)"
    # ...and nothing is documented that the server does not have.
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented - routes == set()


def test_the_route_check_sees_an_undocumented_route(app: Flask) -> None:
    @app.get("/undocumented/<int:number>")
    def undocumented(number: int) -> str:
        return str(number)

    assert ("/undocumented/{number}", "get") in documented_routes(app)
    with pytest.raises(AssertionError, match="missing from the OpenAPI document"):
        test_every_route_is_documented(app)
