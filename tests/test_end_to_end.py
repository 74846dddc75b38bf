"""The whole path: a real HTTP server serves a feed, the real CLI polls it, search and web show it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from aggregator.config import load_config
from web.app import create_app

from .support.cli import NEWSDESK, newsdesk
from .support.httpserver import FeedServer, Reply
from .support.live import LiveServer

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "e2e" / "harbour.xml"


@pytest.fixture
def served_feed(feed_server: FeedServer) -> str:
    feed_server.route("/harbour.xml", Reply(200, FIXTURE.read_bytes(), {"Content-Type": "application/rss+xml"}))
    return feed_server.url("/harbour.xml")


def write_config(tmp_path: Path, feed_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'data_dir = "data"\n\n[[feeds]]\nurl = "{feed_url}"\ntags = ["local"]\n')
    return path


def test_poll_search_and_web(tmp_path: Path, served_feed: str) -> None:
    config_path = write_config(tmp_path, served_feed)
    out = newsdesk(config_path, "poll", "--once").stdout
    assert "3 new" in out

    found = json.loads(newsdesk(config_path, "search", "mackerel", "--json").stdout)
    assert found["total"] == 1
    assert found["hits"][0]["title"] == "Fishermen report record mackerel catch"
    assert found["hits"][0]["source"] == "Harbour Gazette"

    listed = [json.loads(line) for line in newsdesk(config_path, "feeds", "list", "--json").stdout.splitlines()]
    assert listed[0]["url"] == served_feed and listed[0]["last_status"] == 200 and listed[0]["entry_count"] == 3

    config = load_config(config_path)
    with LiveServer(create_app(config)) as live:
        api = httpx.get(f"{live.base}/api/v1/search", params={"q": "ferry"}).json()
        assert api["total"] == 1
        hit = api["hits"][0]
        assert hit["url"] == "https://harbour-gazette.example/2024/05/ferry-timetable"
        assert hit["published_at"] == "2024-05-08T10:00:00Z"
        assert "<mark" in hit["snippet"] and "ferry</mark>" in hit["snippet"]
        page = httpx.get(f"{live.base}/", params={"q": "lighthouse"})
        assert page.status_code == 200 and "Lighthouse keeper retires after forty years" in page.text
        assert httpx.get(f"{live.base}/healthz").json()["status"] == "ok"
        entry = httpx.get(f"{live.base}/api/v1/entries/{hit['id']}").json()
        assert entry["title"] == "Ferry timetable changes for the summer season"
        assert httpx.get(f"{live.base}/api/v1/entries/nope").status_code == 404


def test_index_catches_up_after_a_crash_between_poll_and_index(tmp_path: Path, served_feed: str) -> None:
    config_path = write_config(tmp_path, served_feed)
    # Store committed, index never ran: what a kill right after the poll leaves behind.
    newsdesk(config_path, "poll", "--once", "--no-index")
    assert json.loads(newsdesk(config_path, "search", "mackerel", "--json").stdout)["total"] == 0
    # A real kill -9 of an indexing run in progress must not lose or duplicate anything either.
    proc = subprocess.Popen([NEWSDESK, "--config", str(config_path), "index"], stderr=subprocess.DEVNULL)
    proc.kill()
    proc.wait()
    out = newsdesk(config_path, "index").stdout
    assert "change seq 3" in out
    for word, title in [("mackerel", "Fishermen"), ("lighthouse", "Lighthouse"), ("ferry", "Ferry")]:
        result = json.loads(newsdesk(config_path, "search", word, "--json").stdout)
        assert result["total"] == 1 and result["hits"][0]["title"].startswith(title)


def test_reindex_rebuilds_from_the_store(tmp_path: Path, served_feed: str) -> None:
    config_path = write_config(tmp_path, served_feed)
    newsdesk(config_path, "poll", "--once")
    assert "reindexed 3 entries" in newsdesk(config_path, "reindex").stdout
    assert json.loads(newsdesk(config_path, "search", "harbour OR ferry", "--json").stdout)["total"] >= 1
    generations = list((tmp_path / "data" / "index").glob("gen-*"))
    assert len(generations) == 1


def test_broken_feed_is_reported_and_others_still_polled(
    tmp_path: Path, feed_server: FeedServer, served_feed: str
) -> None:
    feed_server.route("/broken.xml", Reply(200, b"<rss><channel><title>x</title><item><title>", {}))
    feed_server.route("/gone.xml", Reply(500, b"oops", {}))
    path = tmp_path / "config.toml"
    path.write_text(
        f'data_dir = "data"\n[[feeds]]\nurl = "{feed_server.url("/gone.xml")}"\n[[feeds]]\nurl = "{served_feed}"\n'
    )
    polled = newsdesk(path, "poll", "--once", check=False)
    assert polled.returncode == 1, polled.stderr  # a failed feed shows in the exit status
    assert "HTTP 500" in polled.stdout and "3 new" in polled.stdout
    assert "1 failed" in polled.stderr and "Traceback" not in polled.stderr
    feeds = {f["url"]: f for f in map(json.loads, newsdesk(path, "feeds", "list", "--json").stdout.splitlines())}
    failing = feeds[feed_server.url("/gone.xml")]
    assert failing["last_status"] == 500 and failing["consecutive_failures"] == 1 and "500" in failing["last_error"]


def test_inspect_contract_on_the_seed_story(seed_feed: Path) -> None:
    result = subprocess.run([NEWSDESK, "inspect", str(seed_feed), "--json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 1
    record = records[0]
    for key in (
        "id",
        "url",
        "title",
        "authors",
        "published_at",
        "updated_at",
        "summary",
        "text",
        "image",
        "tags",
        "language",
        "source",
    ):
        assert key in record
    assert record["title"] == "Trump Blames Iran as Protests Erupt Outside US Embassy in Iraq"
    assert record["authors"] == ["Reuters and Algemeiner Staff"]
    assert record["published_at"] == "2019-12-31T21:38:00Z"
    assert record["text"].startswith("Militiamen and their supporters")
    assert set(record["source"]) == {"feed_url", "title", "site_url"}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("/nonexistent/feed.xml", "no such file"),
        ("not-a-scheme://x", "is not an http(s) URL"),
        ("http://127.0.0.1:9/feed.xml", "could not connect"),
    ],
)
def test_inspect_errors_are_one_line(source: str, message: str) -> None:
    result = subprocess.run([NEWSDESK, "inspect", source, "--json"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr


def test_inspect_html_page_says_not_a_feed(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        '<!doctype html><html><head><link rel="alternate" type="application/rss+xml" href="/feed"></head></html>'
    )
    result = subprocess.run([NEWSDESK, "inspect", str(page)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "not a feed" in result.stderr and "/feed" in result.stderr


def test_bad_config_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[[feeds]]\nurl = "https://a.example/"\n[[feeds]]\nurl = "htp://x"\n')
    result = newsdesk(path, "feeds", "list", check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "feeds[1].url: 'htp://x' is not an http(s) URL" in result.stderr
