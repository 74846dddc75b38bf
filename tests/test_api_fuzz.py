"""API fuzzing driven by the OpenAPI document: every documented operation and parameter, against the real server.

Schemathesis generates requests from the document (schema-valid ones, and schema-violating ones for
operations with parameters), sends them to the real WSGI app under waitress on 127.0.0.1 over the
fixture world, and checks each answer: no 5xx the document does not list (oEmbed's 501 for another
format is the spec's), no traceback, documented status codes and content types, JSON bodies as the
document says, and no answer slower than a few seconds. Requests also name real entries and
articles, so the found paths are exercised, not only the 404s.

Deterministic (Hypothesis derandomized, no example database) so CI is stable; MAX_EXAMPLES per
operation keeps the whole run to about half a minute on two busy cores.

Not checked: that every schema-valid request is accepted (positive_data_acceptance) and every
schema-violating one refused (negative_data_rejection). The query language has rules a schema
cannot state (a query may combine at most search.max_clauses words; related needs one of entry,
url or title), and the server is lenient where forms are (an empty sort means the default); both
answers are documented 400s with a message.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.search.world import build_world
from web.app import create_app
from web.openapi import openapi_document

from .support.live import LiveServer

pytestmark = pytest.mark.slow

#: Requests per operation (split between the strategies below).
MAX_EXAMPLES = 60
#: Slowest answer accepted, in seconds ("a few seconds"; typical answers take milliseconds).
SLOWEST = 5.0
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance, response_headers_conformance]
OPERATIONS = sorted((method.upper(), path) for path, item in openapi_document()["paths"].items() for method in item)


class Site:
    """The live server and what it stores, for requests that name real things."""

    def __init__(self, base: str, entry_ids: list[str], article_urls: list[str], story_ids: list[str]) -> None:
        self.base = base
        self.entry_ids = entry_ids
        self.article_urls = article_urls
        self.story_ids = story_ids


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    services = build_world(tmp_path_factory.mktemp("world"))
    services.assign_stories()  # what the writer does after a poll: the story endpoints have stories to show
    # No rate limit: the fuzzer is one client making hundreds of related and oEmbed requests.
    services.config = replace(services.config, server=replace(services.config.server, rate_limit_per_minute=0))
    app = create_app(services.config, services)
    hits = app.test_client().get("/api/v1/search?q=harbour+OR+strike+OR+tide&per_page=30").get_json()["hits"]
    ids = [hit["id"] for hit in hits]
    urls = [hit["url"] for hit in hits if hit["url"]]
    assert len(ids) >= 10 and urls
    story_ids = sorted(set(services.stories.stories_of(ids).values()))
    assert story_ids
    with LiveServer(app, threads=4) as live:
        yield Site(live.base, ids, urls + [f"{live.base}/entries/{entry_id}" for entry_id in ids[:3]], story_ids)
    services.close()


def strategies(operation: Any, site: Site) -> list[Any]:
    """Return the request strategies for an operation: generated, naming real entries, and schema-violating."""
    names = {(p["in"], p["name"]) for p in operation.definition.raw.get("parameters", [])}
    chosen = [operation.as_strategy()]
    ids = st.sampled_from(site.entry_ids)
    if ("path", "entry_id") in names:
        chosen.append(ids.flatmap(lambda entry_id: operation.as_strategy(path_parameters={"entry_id": entry_id})))
    if ("path", "story_id") in names:
        stories = st.sampled_from(site.story_ids)
        chosen.append(stories.flatmap(lambda story_id: operation.as_strategy(path_parameters={"story_id": story_id})))
    if ("query", "entry") in names:
        chosen.append(ids.flatmap(lambda entry_id: operation.as_strategy(query={"entry": entry_id})))
    if ("query", "url") in names:
        urls = st.sampled_from(site.article_urls)
        chosen.append(urls.flatmap(lambda url: operation.as_strategy(query={"url": url})))
    if any(location == "query" for location, _ in names):
        chosen.append(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    return chosen


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzz_operation(site: Site, method: str, path: str) -> None:
    schema = schemathesis.openapi.from_dict(openapi_document(site.base))
    operation = schema[path][method]
    documented = {int(code) for code in operation.definition.raw["responses"] if code.isdigit()}
    answered: set[int] = set()

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(case=st.one_of(strategies(operation, site)))
    def send(case: Any) -> None:
        started = time.monotonic()
        response = case.call(base_url=site.base, timeout=30)
        elapsed = time.monotonic() - started
        answered.add(response.status_code)
        where = f"{case.method} {case.formatted_path} {case.query!r}"
        assert elapsed < SLOWEST, f"{where} took {elapsed:.1f} s"
        assert response.status_code < 500 or response.status_code in documented, f"{where}: {response.text[:300]}"
        assert "Traceback" not in response.text, where
        case.validate_response(response, checks=CHECKS)

    send()
    # The run reached the operation's success answer, not only its errors: a 2xx, or for an operation
    # that only redirects (/search), its documented redirect.
    success = range(200, 300) if any(200 <= code < 300 for code in documented) else documented & set(range(300, 400))
    assert success and any(status in success for status in answered), answered
