"""The lead image is shown once: an article body leaves out every copy of it, however its URL was dressed up."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import html as lxml_html

from aggregator.models import Entry, FeedContext
from aggregator.normalize import normalize_feed
from aggregator.normalize.fullcontent import extract_article
from aggregator.normalize.urls import image_key
from aggregator.parse import parse_feed

FEED = Path(__file__).resolve().parent / "fixtures" / "images" / "lead-copies.xml"


@pytest.fixture(scope="module")
def entries() -> dict[str, Entry]:
    context = FeedContext(
        feed_key="lead-copies",
        feed_url="https://leadcopies.example/feed.xml",
        source_title="Lead Copies",
        site_url="https://leadcopies.example/",
        fetched_at=datetime(2024, 5, 8, tzinfo=UTC),
    )
    return {entry.identity: entry for entry in normalize_feed(parse_feed(FEED.read_bytes()), context)}


def pictures(entry: Entry) -> list[str]:
    """Return the src of every picture the entry's body shows."""
    if not entry.content_html:
        return []
    return [
        img.get("src") for img in lxml_html.fragment_fromstring(entry.content_html, create_parent="div").iter("img")
    ]


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        ("https://cdn.example/a/photo.jpg", "https://cdn.example/a/photo.jpg?w=1024&utm_source=rss", True),
        ("https://cdn.example/a/photo.jpg", "http://www.cdn.example/a/photo-1024x683.jpg", True),
        (
            "https://i.example/img/5000.jpg?width=700&quality=85&auto=format&fit=max&s=ab12",
            "https://i.example/img/5000.jpg",
            True,
        ),
        ("https://cdn.example/a/photo.jpg", "https://cdn.example/b/photo.jpg", False),
        ("https://cdn.example/image.php?id=7&w=640", "https://cdn.example/image.php?w=1280&id=7", True),
        ("https://cdn.example/image.php?id=7", "https://cdn.example/image.php?id=8", False),
        ("https://cdn.example/a/photo.jpg", "https://other.example/a/photo.jpg", False),
        ("https://cdn.example:8443/a/photo.jpg", "https://cdn.example/a/photo.jpg", False),
    ],
)
def test_image_key_tells_renditions_from_other_pictures(first: str, second: str, same: bool) -> None:
    assert (image_key(first) == image_key(second)) is same


def test_resized_tracked_and_wordpress_renditions_of_the_lead_leave_the_body(entries: dict[str, Entry]) -> None:
    entry = entries["resized"]
    assert entry.image is not None
    assert entry.image.url == "https://cdn.leadcopies.example/2024/05/harbour.jpg"
    # The caption came from the body's figure, which is gone with the picture; so is the linked copy at the end.
    assert entry.image.caption == "The harbour at dawn. Photo: Staff."
    assert pictures(entry) == [] and "<figure" not in entry.content_html and "<a" not in entry.content_html
    assert "First paragraph" in entry.content_html and "then the picture again" in entry.content_html
    assert "The harbour at dawn" not in entry.text


def test_other_pictures_stay_in_the_body(entries: dict[str, Entry]) -> None:
    entry = entries["another"]
    assert entry.image is not None and image_key(entry.image.url) == "leadcopies.example/image.php?id=7"
    # Only the lead's copy left the shared figure; picture 8, its caption and the map stay.
    assert pictures(entry) == [
        "https://leadcopies.example/image.php?id=8&w=1280",
        "https://leadcopies.example/map.png?w=600",
    ]
    assert "Two pictures, side by side." in entry.content_html


def test_without_media_the_body_s_first_picture_leads_and_is_shown_once(entries: dict[str, Entry]) -> None:
    entry = entries["no-media"]
    assert entry.image is not None and entry.image.url == "https://leadcopies.example/photos/quay.jpg?resize=800,450"
    assert pictures(entry) == ["https://leadcopies.example/photos/stalls.jpg"]
    assert entry.content_html.startswith("<p>The quay reopened")


def test_full_content_pages_leave_out_the_entry_s_lead_image() -> None:
    pytest.importorskip("trafilatura")
    page = (
        "<html><body><article><h1>Harbour</h1>"
        '<figure><img src="https://cdn.leadcopies.example/2024/05/harbour.jpg?w=2048"><figcaption>Dawn.</figcaption></figure>'
        + "".join(f"<p>Paragraph {n} of the article page, long enough to count as its text.</p>" for n in range(8))
        + '<p><img src="https://cdn.leadcopies.example/2024/05/chart.png"></p></article></body></html>'
    )
    kept = extract_article(page.encode(), "https://leadcopies.example/resized")
    dropped = extract_article(
        page.encode(), "https://leadcopies.example/resized", "https://cdn.leadcopies.example/2024/05/harbour.jpg"
    )
    assert kept is not None and dropped is not None
    assert "harbour.jpg" in kept[0] and "harbour.jpg" not in dropped[0]
    assert kept[1] == dropped[1]
