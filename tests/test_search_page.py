"""The HTML search page at its edges: a page past the last one, and date facets with nothing in them.

A feed of harbour reports published two to five days before now (the date facet counts from the real
clock) is polled from a file and indexed for real; the page is asked through Flask's client.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from flask.testing import FlaskClient
from lxml import html as lxml_html

from tests.support.polled import polled_services
from web.app import create_app

#: Three unrelated harbour reports (distinct stories, so results do not fold into one).
REPORTS = (
    ("The dredger moves to the harbour mouth", "Dredging of the harbour channel starts at the mouth."),
    ("Harbour ferry timetable changes for winter", "The island ferry sails twice a day from December."),
    ("Fish market at the harbour reopens after repairs", "Traders return to the repaired market hall."),
)


def harbour_feed(now: datetime) -> str:
    items = "".join(
        f"<item><title>{title}</title>"
        f"<link>https://harbourmaster.example/reports/{n}</link><guid>harbour-{n}</guid>"
        f"<pubDate>{format_datetime(now - timedelta(days=2 + n))}</pubDate>"
        f"<description>{summary}</description></item>"
        for n, (title, summary) in enumerate(REPORTS)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Harbourmaster</title>'
        f"<link>https://harbourmaster.example/</link><description>Reports</description>{items}</channel></rss>"
    )


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlaskClient]:
    root = tmp_path_factory.mktemp("search-page")
    (root / "harbour.xml").write_text(harbour_feed(datetime.now(UTC)), encoding="utf-8")
    services = polled_services(root / "data", [str(root / "harbour.xml")])
    yield create_app(services.config, services).test_client()
    services.close()


def page(client: FlaskClient, path: str) -> lxml_html.HtmlElement:
    response = client.get(path)
    assert response.status_code == 200
    return lxml_html.fromstring(response.get_data(as_text=True))


def test_a_page_past_the_last_links_back_to_the_last_instead_of_saying_nothing_matched(client: FlaskClient) -> None:
    past = page(client, "/?q=harbour&page=9999")
    text = past.text_content()
    assert "Nothing matched" not in text
    assert "Check the spelling" not in text
    notice = past.xpath("//p[contains(@class, 'past-end')]")
    assert len(notice) == 1 and "Page 9999 is past the end" in notice[0].text_content()
    (link,) = notice[0].xpath(".//a/@href")
    assert "page=1" in link and "q=harbour" in link
    assert "9999" not in " ".join(past.xpath("//a/@href"))
    # The last real page still lists the reports, and a query that matches nothing still says so.
    assert len(page(client, link).xpath("//ol[@class='results']/li")) == len(REPORTS)
    assert "Nothing matched" in page(client, "/?q=submarine&page=3").text_content()


def test_date_facets_link_only_buckets_with_results(client: FlaskClient) -> None:
    facets = page(client, "/?q=harbour").xpath("//aside[@class='facets']//section[h3='Date']//li")
    shown = {li.xpath("string(a)"): li.xpath("string(span[@class='n'])") for li in facets}
    # Every report is two to four days old: none in the past 24 hours, all in the past week.
    assert "Past 24 hours" not in shown
    assert shown["Past week"] == str(len(REPORTS))
    assert all(count != "0" for count in shown.values())


def test_search_at_slash_search_redirects_to_the_search_page_with_its_query(client: FlaskClient) -> None:
    # /search?q=... is where readers (and a browser's site search) look first; the search page is /?q=...
    moved = client.get("/search?q=harbour+ferry&page=2")
    assert moved.status_code == 301
    assert moved.headers["Location"] == "/?q=harbour+ferry&page=2"
    assert client.get("/search").headers["Location"] == "/"
    hostile = client.get("/search?q=%3Cscript%3Ealert(1)%3C/script%3E%0D%0ASet-Cookie:x=1")
    assert hostile.status_code == 301
    assert "\r" not in hostile.headers["Location"] and "<" not in hostile.headers["Location"]
    assert "Set-Cookie" not in hostile.headers
    followed = client.get("/search?q=ferry", follow_redirects=True)
    assert followed.status_code == 200
    assert "Harbour ferry timetable changes for winter" in followed.get_data(as_text=True)
