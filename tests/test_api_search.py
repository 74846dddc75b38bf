"""The JSON API, its OpenAPI document, the Atom/RSS feeds of a search and OpenSearch, over a real index."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.fixtures.search.world import build_world
from web.app import create_app
from web.openapi import SEARCH_PARAMETERS, openapi_document

ATOM = "{http://www.w3.org/2005/Atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    services = build_world(tmp_path_factory.mktemp("world"))
    app = create_app(services.config, services)
    yield app.test_client()
    services.close()


def validate(value: Any, schema: dict[str, Any], where: str = "$") -> None:
    """Check ``value`` against the JSON Schema subset our OpenAPI document uses (fails the test on a mismatch)."""
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        python = {
            "string": str,
            "integer": int,
            "number": (int, float),
            "boolean": bool,
            "array": list,
            "object": dict,
            "null": type(None),
        }
        assert any(isinstance(value, python[k]) for k in kinds), f"{where}: {value!r} is not {kinds}"
        if isinstance(value, bool):
            assert "boolean" in kinds, f"{where}: boolean where {kinds} expected"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if "minimum" in schema and isinstance(value, int | float):
        assert value >= schema["minimum"], where
    if "maximum" in schema and isinstance(value, int | float):
        assert value <= schema["maximum"], where
    if isinstance(value, dict) and "properties" in schema:
        assert set(value) == set(schema["properties"]), f"{where}: keys {sorted(value)} != documented"
        for key, sub in schema["properties"].items():
            validate(value[key], sub, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            validate(item, schema["items"], f"{where}[{i}]")


def test_search_api_shape(client: FlaskClient) -> None:
    response = client.get("/api/v1/search", query_string={"q": "dock strike"})
    assert response.status_code == 200 and response.mimetype == "application/json"
    data = response.get_json()
    assert data["total"] == 3 and data["page"] == 1 and data["suggestion"] is None
    hit = data["hits"][0]
    assert {"id", "url", "title", "source", "published_at", "snippet", "duplicates"} <= set(hit)
    assert hit["duplicate_count"] == 2 and len(hit["duplicates"]) == 2
    assert data["facets"]["source"] and data["facets"]["tag"] == [{"value": "economy", "count": 3}]


def test_search_api_filters_and_sort(client: FlaskClient) -> None:
    data = client.get(
        "/api/v1/search",
        query_string=[("q", "strike OR election"), ("source", "Valley Times"), ("collapse", "0")],
    ).get_json()
    assert {h["source"] for h in data["hits"]} == {"Valley Times"} and data["total"] == 2
    french = client.get("/api/v1/search", query_string={"lang": "fr", "sort": "oldest"}).get_json()
    assert french["total"] == 3 and french["sort"] == "oldest"
    assert [h["published_at"] for h in french["hits"]] == sorted(h["published_at"] for h in french["hits"])
    ranged = client.get("/api/v1/search", query_string={"q": "ferry", "from": "2024-05-15", "to": "2024-05-15"})
    assert ranged.get_json()["total"] == 1
    tagged = client.get("/api/v1/search", query_string={"q": "harbour", "tag": "fishing"}).get_json()
    assert tagged["total"] == 1


def test_per_page_is_capped_and_pages_are_counted(client: FlaskClient) -> None:
    data = client.get("/api/v1/search", query_string={"q": "tide", "per_page": "500", "collapse": "0"}).get_json()
    assert data["per_page"] == 100 and data["total"] == 46 and len(data["hits"]) == 46
    second = client.get("/api/v1/search", query_string={"q": "tide", "per_page": "20", "page": "2", "collapse": "0"})
    assert second.get_json()["pages"] == 3 and len(second.get_json()["hits"]) == 20


def test_suggestion_and_notices(client: FlaskClient) -> None:
    assert client.get("/api/v1/search?q=mackrel").get_json()["suggestion"] == "mackerel"
    data = client.get("/api/v1/search", query_string={"q": "mackerel zeppelin"}).get_json()
    assert data["relaxed"] is True and any("any of them" in n for n in data["notices"])


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"q": "x", "page": "zero"}, "page must be an integer"),
        ({"q": "x", "page": "0"}, "page must be at least 1"),
        ({"q": "x", "per_page": "-5"}, "per_page must be at least 1"),
        ({"q": "x", "sort": "random"}, "sort must be one of"),
        ({"q": "x", "from": "yesterday"}, "from must be a date"),
        ({"q": "x", "collapse": "maybe"}, "collapse must be"),
    ],
)
def test_bad_parameters_are_json_400(client: FlaskClient, query: dict[str, str], fragment: str) -> None:
    response = client.get("/api/v1/search", query_string=query)
    assert response.status_code == 400 and response.mimetype == "application/json"
    assert fragment in response.get_json()["message"] and response.get_json()["error"] == "bad_request"


def test_entries_api(client: FlaskClient) -> None:
    hit = client.get("/api/v1/search?q=lighthouse+keeper").get_json()["hits"][0]
    entry = client.get(f"/api/v1/entries/{hit['id']}")
    assert entry.status_code == 200 and entry.get_json()["title"] == hit["title"]
    missing = client.get("/api/v1/entries/nope")
    assert missing.status_code == 404 and "nope" in missing.get_json()["message"]


def test_entries_listing_pages_through_every_entry_newest_first(client: FlaskClient) -> None:
    first = client.get("/api/v1/entries", query_string={"per_page": "7"}).get_json()
    total = first["total"]
    assert total > 14 and first["pages"] == -(-total // 7) and first["sort"] == "newest"
    listed = []
    for page in range(1, first["pages"] + 1):
        data = client.get("/api/v1/entries", query_string={"per_page": "7", "page": str(page)}).get_json()
        listed += data["entries"]
    # Every entry once (copies are listed: collapse is off by default), newest first.
    assert len(listed) == total and len({e["id"] for e in listed}) == total
    dates = [e["published_at"] for e in listed]
    assert dates == sorted(dates, reverse=True)
    oldest = client.get("/api/v1/entries", query_string={"sort": "oldest", "per_page": "1"}).get_json()
    assert oldest["entries"][0]["published_at"] == dates[-1]
    # A page is cut from the pages before it by date alone, ties included: paged 7 at a time, either
    # order lists exactly what one page of everything lists, in the same order.
    for sort in ("newest", "oldest"):
        whole = client.get("/api/v1/entries", query_string={"sort": sort, "per_page": "100"}).get_json()
        assert whole["total"] == total <= 100
        paged = []
        for page in range(1, first["pages"] + 1):
            query = {"sort": sort, "per_page": "7", "page": str(page)}
            paged += [e["id"] for e in client.get("/api/v1/entries", query_string=query).get_json()["entries"]]
        assert paged == [e["id"] for e in whole["entries"]]
        assert len({e["published_at"] for e in whole["entries"]}) < total  # the world has ties to break
    # Copies collapse on request: fewer groups than entries in this world (a wire story told three times).
    collapsed = client.get("/api/v1/entries", query_string={"collapse": "1"}).get_json()
    assert collapsed["total_groups"] < total and collapsed["total"] == total


def test_entries_listing_takes_the_search_filters(client: FlaskClient) -> None:
    every = client.get("/api/v1/entries", query_string={"per_page": "100"}).get_json()
    sources = {e["source"] for e in every["entries"]}
    assert "Valley Times" in sources and len(sources) > 1
    valley = client.get("/api/v1/entries", query_string={"source": "Valley Times", "per_page": "100"}).get_json()
    assert valley["total"] == sum(1 for e in every["entries"] if e["source"] == "Valley Times") > 0
    assert {e["source"] for e in valley["entries"]} == {"Valley Times"}
    french = client.get("/api/v1/entries", query_string={"lang": "fr"}).get_json()
    assert french["total"] > 0 and {e["language"] for e in french["entries"]} == {"fr"}


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"q": "ferry"}, "/api/v1/search?q="),
        ({"sort": "relevance"}, "newest or oldest"),
        ({"from": "yesterday-ish"}, "from"),
        ({"page": "0"}, "page"),
    ],
)
def test_entries_listing_refuses_what_it_cannot_do_in_one_line(
    client: FlaskClient, query: dict[str, str], fragment: str
) -> None:
    answer = client.get("/api/v1/entries", query_string=query)
    assert answer.status_code == 400 and fragment in answer.get_json()["message"]


def test_openapi_document_matches_the_server(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1") and document == openapi_document(document["servers"][0]["url"])
    operation = document["paths"]["/api/v1/search"]["get"]
    # Every parameter the server reads is documented, and only those.
    import inspect

    import web.api

    source = inspect.getsource(web.api.search_request)
    read = {name for name in ("q", "source", "tag", "lang", "from", "to", "sort", "page", "per_page", "collapse")}
    assert {p["name"] for p in operation["parameters"]} == read
    assert all(f'"{name}"' in source for name in read)
    schemas = document["components"]["schemas"]
    for query in ({"q": "dock strike"}, {"q": "mackrel"}, {"lang": "fr"}, {"q": "tide", "per_page": "3"}):
        validate(client.get("/api/v1/search", query_string=query).get_json(), schemas["SearchResults"])
    validate(client.get("/api/v1/search?sort=nope").get_json(), schemas["Error"])
    hit = client.get("/api/v1/search?q=ferry").get_json()["hits"][0]
    validate(client.get(f"/api/v1/entries/{hit['id']}").get_json(), schemas["Entry"])
    validate(client.get("/api/v1/entries/none").get_json(), schemas["Error"])
    listing = document["paths"]["/api/v1/entries"]["get"]
    assert {p["name"] for p in listing["parameters"]} == read - {"q"}
    for query in ({}, {"source": "Valley Times", "sort": "oldest"}, {"collapse": "1", "per_page": "2"}):
        answer = client.get("/api/v1/entries", query_string=query).get_json()
        assert answer["entries"]
        validate(answer, listing["responses"]["200"]["content"]["application/json"]["schema"])
    assert SEARCH_PARAMETERS[0]["name"] == "q"


def test_search_as_atom(client: FlaskClient) -> None:
    response = client.get("/search.atom", query_string={"q": "harbour"})
    assert response.status_code == 200 and response.mimetype == "application/atom+xml"
    feed = etree.fromstring(response.data)
    assert feed.tag == f"{ATOM}feed" and "harbour" in feed.findtext(f"{ATOM}title")
    self_link = feed.find(f"{ATOM}link[@rel='self']").get("href")
    assert parse_qs(urlsplit(self_link).query)["q"] == ["harbour"]
    entries = feed.findall(f"{ATOM}entry")
    published = [e.findtext(f"{ATOM}published") for e in entries]
    assert entries and published == sorted(published, reverse=True)  # a feed lists the newest first
    first = entries[0]
    assert first.findtext(f"{ATOM}id").startswith("tag:") and first.find(f"{ATOM}link").get("href").startswith(
        "https://"
    )
    assert "<mark>" in first.findtext(f"{ATOM}summary") and first.find(f"{ATOM}summary").get("type") == "html"
    assert first.find(f"{ATOM}author/{ATOM}name") is not None
    assert feed.findtext(f"{OPENSEARCH}totalResults") == str(len(entries))


def test_search_as_rss(client: FlaskClient) -> None:
    response = client.get("/search.rss", query_string={"q": "election", "lang": "en"})
    assert response.status_code == 200 and response.mimetype == "application/rss+xml"
    channel = etree.fromstring(response.data).find("channel")
    items = channel.findall("item")
    assert len(items) == 2 and all(i.findtext("pubDate").endswith("GMT") for i in items)
    assert client.get("/search.rss?sort=nope").status_code == 400


def test_opensearch_description_and_autodiscovery(client: FlaskClient) -> None:
    response = client.get("/opensearch.xml")
    assert response.mimetype == "application/opensearchdescription+xml"
    description = etree.fromstring(response.data)
    assert description.findtext(f"{OPENSEARCH}ShortName") == "Newsdesk"
    templates = {u.get("type"): u.get("template") for u in description.findall(f"{OPENSEARCH}Url")}
    assert "{searchTerms}" in templates["text/html"] and "search.atom" in templates["application/atom+xml"]
    for path in ("/", "/?q=harbour", "/?q=zzzz"):
        page = client.get(path).get_data(as_text=True)
        assert 'rel="search" type="application/opensearchdescription+xml"' in page
    assert 'type="application/atom+xml"' in client.get("/?q=harbour").get_data(as_text=True)


def test_search_page_without_javascript(client: FlaskClient) -> None:
    page = client.get("/?q=dock+strike").get_data(as_text=True)
    assert "2 more from other outlets" in page and "<details" in page and "Refine" in page
    assert client.get("/?q=mackrel").get_data(as_text=True).count("Did you mean") == 1
    nothing = client.get("/?q=zzzzqqq").get_data(as_text=True)
    assert "Nothing matched" in nothing and "<h3>Date</h3>" not in nothing  # no empty facet groups
    # Copies of a tide report all come from one outlet: they are copies, not "other outlets".
    tides = client.get("/?q=tide").get_data(as_text=True)
    assert "more copies</summary>" in tides and "from other outlets" not in tides
    # The Topic facet shows a tag as the feed wrote it and links to its normalized form.
    keeper = client.get("/?q=keeper").get_data(as_text=True)
    assert ">Moffat, Alasdair</a>" in keeper and "tag=moffat+alasdair" in keeper
    bad = client.get("/?q=x&sort=sideways")
    assert bad.status_code == 400 and "sort must be one of" in bad.get_data(as_text=True)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    q=st.text(max_size=60) | st.text(alphabet='ab:"-~*|()OR tagdte0129', max_size=40),
    extra=st.dictionaries(
        st.sampled_from(["source", "tag", "lang", "from", "to", "sort", "page", "per_page", "collapse"]),
        st.text(max_size=12),
        max_size=3,
    ),
)
def test_arbitrary_input_never_breaks_the_api(client: FlaskClient, q: str, extra: dict[str, str]) -> None:
    for path in ("/api/v1/search", "/"):
        response = client.get(path, query_string={"q": q, **extra})
        assert response.status_code in (200, 400), (q, extra, response.status_code)
        body = response.get_data(as_text=True)
        assert "Traceback" not in body
        if path.startswith("/api/"):
            assert isinstance(response.get_json(), dict)


def test_control_characters_in_a_query_are_read_as_spaces(client: FlaskClient) -> None:
    # Found by the API fuzzer: q=\x1f made the search feeds answer 500 (lxml refuses control characters).
    for path in ("/search.atom", "/search.rss"):
        response = client.get(path, query_string={"q": "dock\x1fstrike\x00"})
        assert response.status_code == 200, path
        assert b"dock strike" in response.data and b"\x1f" not in response.data
    data = client.get("/api/v1/search", query_string={"q": "dock\x1bstrike"}).get_json()
    assert data["query"] == "dock strike" and data["total"] == 3
