"""The real `newsdesk` CLI for feeds: add with discovery, poll --once/--all, list --json, remove, OPML import/export."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from aggregator.opml import read_opml

from .feedgen import html_page, rss
from .support.cli import newsdesk
from .support.httpserver import FeedServer, Reply

ISO_Z = "%Y-%m-%dT%H:%M:%SZ"


def write_config(tmp_path: Path, *urls: str) -> Path:
    path = tmp_path / "config.toml"
    feeds = "".join(f'[[feeds]]\nurl = "{u}"\n' for u in urls)
    path.write_text(f'data_dir = "data"\n[polling]\nper_host_delay = 0\nper_host_concurrency = 4\n{feeds}')
    return path


def listed(config: Path) -> dict[str, dict[str, Any]]:
    lines = newsdesk(config, "feeds", "list", "--json").stdout.splitlines()
    return {f["url"]: f for f in map(json.loads, lines)}


def test_feeds_add_finds_the_feed_a_page_links_to(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/", Reply(200, html_page("/feed.xml"), {"Content-Type": "text/html"}))
    feed_server.route("/multi", Reply(200, html_page("/feed.xml", "/comments.xml"), {"Content-Type": "text/html"}))
    feed_server.route("/nothing", Reply(200, html_page(), {"Content-Type": "text/html"}))
    feed_server.route("/feed.xml", Reply(200, rss(2, title="Main")))
    feed_server.route("/comments.xml", Reply(200, rss(2, title="Comments")))
    feed_server.route("/down", Reply(500, b""))
    config = write_config(tmp_path)

    added = newsdesk(config, "feeds", "add", feed_server.url("/"))
    assert f"is a web page; adding the feed it links to: {feed_server.url('/feed.xml')}" in added.stderr

    several = newsdesk(config, "feeds", "add", feed_server.url("/multi"), check=False)
    assert several.returncode == 1
    assert f"2. {feed_server.url('/comments.xml')}" in several.stderr and "--pick N" in several.stderr
    newsdesk(config, "feeds", "add", feed_server.url("/multi"), "--pick", "2", "--tag", "talk")

    nothing = newsdesk(config, "feeds", "add", feed_server.url("/nothing"), check=False)
    assert nothing.returncode == 1 and "links to no feed" in nothing.stderr

    down = newsdesk(config, "feeds", "add", feed_server.url("/down"), check=False)
    assert "the server failed (HTTP 500" in down.stderr and "--no-check" in down.stderr
    newsdesk(config, "feeds", "add", feed_server.url("/down"), "--no-check")

    bad = newsdesk(config, "feeds", "add", "htp://x", check=False)
    assert "is not an http(s) URL" in bad.stderr

    feeds = listed(config)
    assert sorted(feeds) == sorted(feed_server.url(p) for p in ("/feed.xml", "/comments.xml", "/down"))
    assert feeds[feed_server.url("/comments.xml")]["tags"] == ["talk"]
    # New feeds are due at once, so a running scheduler picks them up on its next tick.
    assert all(f["next_check_at"] <= datetime.now(UTC).strftime(ISO_Z) for f in feeds.values())

    disabled = newsdesk(config, "feeds", "disable", feed_server.url("/down"), "--reason", "site rebuild")
    assert "disabled feed" in disabled.stdout
    assert listed(config)[feed_server.url("/down")]["disabled_reason"] == "site rebuild"
    newsdesk(config, "feeds", "enable", feed_server.url("/down"))
    assert listed(config)[feed_server.url("/down")]["enabled"] is True

    removed = newsdesk(config, "feeds", "remove", feed_server.url("/down"))
    assert "removed feed" in removed.stdout
    assert feed_server.url("/down") not in listed(config)


def test_poll_once_then_all_respects_retry_after_and_backoff(tmp_path: Path, feed_server: FeedServer) -> None:
    def conditional(request: BaseHTTPRequestHandler) -> Reply:
        if request.headers.get("If-None-Match") == '"1"':
            return Reply(304, b"", {"ETag": '"1"'})
        return Reply(200, rss(3), {"ETag": '"1"'})

    feed_server.route("/ok.xml", conditional)
    feed_server.route("/busy.xml", Reply(429, b"", {"Retry-After": "3600"}))
    feed_server.route("/bad.xml", Reply(500, b""))
    urls = [feed_server.url(p) for p in ("/ok.xml", "/busy.xml", "/bad.xml")]
    config = write_config(tmp_path, *urls)

    polled = newsdesk(config, "poll", "--once", check=False)
    assert polled.returncode == 1  # two feeds failed; the exit status says so
    first = polled.stdout
    assert f"ok      {urls[0]}: HTTP 200, 3 new" in first
    assert f"error   {urls[1]}: the server says we are polling too often" in first
    again = newsdesk(config, "poll", "--once").stdout
    assert again == ""  # nothing due

    forced = newsdesk(config, "poll", "--all").stdout
    assert f"ok      {urls[0]}: 304 not modified, 0 new" in forced
    assert f"skipped {urls[1]}: the server asked us to wait; due " in forced
    assert f"skipped {urls[2]}: backing off after 1 failure(s); due " in forced
    assert len(feed_server.hits("/busy.xml")) == 1 and len(feed_server.hits("/bad.xml")) == 1

    feeds = listed(config)
    required = {
        "url",
        "title",
        "enabled",
        "disabled_reason",
        "last_checked_at",
        "last_status",
        "last_error",
        "consecutive_failures",
        "next_check_at",
        "entry_count",
        "entries_per_week",
    }
    for feed in feeds.values():
        assert required <= set(feed)
        for key in ("last_checked_at", "next_check_at"):
            datetime.strptime(feed[key], ISO_Z)  # ISO 8601 UTC
    ok, busy, bad = (feeds[u] for u in urls)
    assert (ok["last_status"], ok["last_error"], ok["entry_count"], ok["consecutive_failures"]) == (304, None, 3, 0)
    assert (
        busy["last_status"] == 429 and busy["retry_after_until"] and busy["next_check_at"] >= busy["retry_after_until"]
    )
    assert (bad["last_status"], bad["consecutive_failures"]) == (500, 1) and "server failed" in bad["last_error"]

    text = newsdesk(config, "feeds", "list").stdout
    assert "error: the server failed (HTTP 500 Internal Server Error)" in text and "failures 1" in text


def test_opml_import_then_export(tmp_path: Path) -> None:
    opml = tmp_path / "subs.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head/><body>'
        '<outline text="World"><outline type="rss" text="Harbour" xmlUrl="https://harbour.example/rss"/></outline>'
        '<outline type="rss" text="Loose" xmlUrl="https://loose.example/rss" category="tech"/>'
        '<outline type="rss" text="Bad" xmlUrl="gopher://old"/>'
        "</body></opml>"
    )
    config = write_config(tmp_path)
    imported = newsdesk(config, "feeds", "import", str(opml))
    assert "added   https://harbour.example/rss [World]" in imported.stdout
    assert (
        "skipped gopher://old" in imported.stderr and "imported 2 new feed(s) of 2 listed; 1 skipped" in imported.stderr
    )
    assert "present https://harbour.example/rss" in newsdesk(config, "feeds", "import", str(opml)).stdout

    exported = newsdesk(config, "feeds", "export").stdout.encode()
    feeds, _ = read_opml(exported)
    assert [(f.url, f.title, f.categories) for f in feeds] == [
        ("https://harbour.example/rss", "Harbour", ("World",)),
        ("https://loose.example/rss", "Loose", ("tech",)),
    ]
    out = tmp_path / "out.opml"
    newsdesk(config, "feeds", "export", "-o", str(out))
    assert out.read_bytes() == exported or read_opml(out.read_bytes())[0] == feeds

    missing = newsdesk(config, "feeds", "import", str(tmp_path / "nope.opml"), check=False)
    assert missing.returncode == 1 and "cannot read the OPML file" in missing.stderr
    broken = tmp_path / "broken.opml"
    broken.write_text("<opml><body>")
    assert "not a readable OPML document" in newsdesk(config, "feeds", "import", str(broken), check=False).stderr


def test_adding_a_feed_again_only_adds(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/feed.xml", Reply(200, rss(2, title="Main")))
    feed_server.route("/configured.xml", Reply(200, rss(2, title="Configured")))
    config = write_config(tmp_path, feed_server.url("/configured.xml"))
    url = feed_server.url("/feed.xml")
    newsdesk(config, "feeds", "add", url, "--tag", "local", "--title", "Main Street")
    again = newsdesk(config, "feeds", "add", url)
    assert "already present" in again.stdout
    newsdesk(config, "feeds", "add", url, "--tag", "town")
    feed = listed(config)[url]
    assert feed["tags"] == ["local", "town"] and feed["title"] == "Main Street"
    # A feed the config file declares is changed there, not from the command line.
    configured = newsdesk(config, "feeds", "add", feed_server.url("/configured.xml"), "--title", "X", check=False)
    assert configured.returncode == 1 and "declared in the config file" in configured.stderr


def test_listing_and_exporting_feeds_write_nothing(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/one.xml", Reply(200, rss(2, title="One")))
    first, second = feed_server.url("/one.xml"), feed_server.url("/two.xml")
    config = write_config(tmp_path, first)
    newsdesk(config, "poll")
    # The config now declares a second feed and drops nothing: a writer would add it; a reader must not.
    config.write_text(config.read_text() + f'[[feeds]]\nurl = "{second}"\ntitle = "Two"\n')
    database = tmp_path / "data" / "newsdesk.db"
    before = (database.read_bytes(), database.stat().st_mtime_ns)

    text = newsdesk(config, "feeds", "list").stdout
    as_json = listed(config)
    exported, _skipped = read_opml(newsdesk(config, "feeds", "export").stdout.encode())

    assert (database.read_bytes(), database.stat().st_mtime_ns) == before
    assert (
        not (tmp_path / "data" / "newsdesk.db-wal").exists()
        or (tmp_path / "data" / "newsdesk.db-wal").stat().st_size == 0
    )
    assert as_json[first]["entry_count"] == 2 and as_json[second]["added"] is False
    assert f"{second}\n     in the config, not added yet" in text
    assert sorted(item.url for item in exported) == sorted([first, second])
    # The next writer adds it.
    newsdesk(config, "poll", check=False)
    assert listed(config)[second].get("added") is None and listed(config)[second]["id"] is not None
