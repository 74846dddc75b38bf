"""Entries whose feed gave no usable link (url_missing) never hand out the site's home page as theirs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from lxml import etree

from aggregator.config import config_from_dict
from aggregator.poller import update_feeds
from web.app import create_app
from web.services import build_services

ATOM = "{http://www.w3.org/2005/Atom}"

FEED = """<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Quayside Post</title>
<link>https://quayside.example/</link><description>News</description><language>en</language>
<item><title>Pontoon repairs finish early</title><guid isPermaLink="false">pontoon-1</guid>
<link>javascript:alert(1)</link><pubDate>Tue, 07 May 2024 08:30:00 GMT</pubDate>
<description>The pontoon reopens to boats this week.</description></item>
<item><title>Pontoon fees rise for visiting yachts</title><guid isPermaLink="false">pontoon-2</guid>
<link>https://quayside.example/news/pontoon-fees</link><pubDate>Tue, 07 May 2024 09:30:00 GMT</pubDate>
<description>Harbour dues for visiting yachts at the pontoon go up.</description></item>
</channel></rss>"""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    root = tmp_path_factory.mktemp("links")
    (root / "quayside.xml").write_text(FEED, encoding="utf-8")
    config = config_from_dict({"data_dir": str(root / "data")}, label="test-config.toml")
    services = build_services(config)
    feeds = [services.store.add_feed(str(root / "quayside.xml"))]
    for result in update_feeds(services.store, feeds, config):
        assert result.error is None, result
    services.indexer().catch_up()
    linkless = [e for e in services.store.iter_entries() if e.title.startswith("Pontoon repairs")]
    assert linkless and "url_missing" in linkless[0].flags and linkless[0].url == "https://quayside.example/"
    yield create_app(services.config, services).test_client()
    services.close()


def test_search_api_and_entries_api_give_null_for_a_missing_link(client: FlaskClient) -> None:
    hits = {h["title"]: h for h in client.get("/api/v1/search?q=pontoon&collapse=0").get_json()["hits"]}
    assert hits["Pontoon repairs finish early"]["url"] is None
    assert hits["Pontoon fees rise for visiting yachts"]["url"] == "https://quayside.example/news/pontoon-fees"
    entry = client.get(f"/api/v1/entries/{hits['Pontoon repairs finish early']['id']}").get_json()
    assert entry["url"] is None and "url_missing" in entry["flags"]


def test_search_feeds_link_to_our_own_page_instead(client: FlaskClient) -> None:
    atom = etree.fromstring(client.get("/search.atom?q=pontoon").data)
    links = {e.findtext(f"{ATOM}title"): e.find(f"{ATOM}link").get("href") for e in atom.findall(f"{ATOM}entry")}
    rss = etree.fromstring(client.get("/search.rss?q=pontoon").data)
    rss_links = {i.findtext("title"): i.findtext("link") for i in rss.find("channel").findall("item")}
    for found in (links, rss_links):
        assert found["Pontoon repairs finish early"].startswith("http://localhost/entries/")
        assert found["Pontoon fees rise for visiting yachts"] == "https://quayside.example/news/pontoon-fees"


def test_search_page_offers_no_original_link_to_the_home_page(client: FlaskClient) -> None:
    page = client.get("/?q=pontoon&collapse=0").get_data(as_text=True)
    assert 'href="https://quayside.example/news/pontoon-fees"' in page
    assert 'href="https://quayside.example/"' not in page
    assert page.count('class="original"') == 1
