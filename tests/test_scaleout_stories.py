"""Stories on a scaled-out store, with real processes: two pollers (one assigns at a time), two web followers, crashes."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from aggregator.store import Store, open_store

from .support.cli import newsdesk
from .support.nodes import FeedHosts, free_port, replica_status, rss, running, start_node, until
from .support.pg import end_sessions
from .support.story_articles import EXPLOSION, OTHERS, OUTLETS
from .test_scaleout import HOSTS, NODE_SESSIONS, log_lines, serve_feeds, words, write_config
from .test_store import make_entry
from .test_story_leader import assert_each_entry_has_one_story, members

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ARTICLES = EXPLOSION + OTHERS


def serve_outlets(hosts: FeedHosts, store: Store) -> None:
    """Serve each outlet's articles (the explosion, reported by three, and other news) as a feed of its own."""
    for outlet, (title, site) in OUTLETS.items():
        items = [(a.slug, a.title, " ".join(a.paragraphs)) for a in ARTICLES if a.outlet == outlet]
        # The channel's link names the outlet (stories count outlets by their site's host).
        body = rss(title, items).replace(b"<link>https://example.org/</link>", f"<link>{site}</link>".encode(), 1)
        store.add_feed(hosts.add_feed(0, f"/{outlet}.xml", body), interval_seconds=60)


def all_assigned(store: Store, expected: int) -> bool:
    return store.count_entries() == expected and len(members(store)) == expected


def get(port: int, path: str, **params: Any) -> Any:
    return httpx.get(f"http://127.0.0.1:{port}{path}", params=params, timeout=10).json()


def stories_seen(port: int) -> list[tuple[str, int, list[str]]]:
    """Return the top stories a web node lists: (id, outlets, article ids)."""
    listed = get(port, "/api/v1/stories", per_page=50)["stories"]
    return [(s["id"], s["outlet_count"], sorted(a["id"] for a in s["articles"])) for s in listed]


def story_ids_of_hits(port: int, query: str) -> dict[str, str | None]:
    """Return entry id -> story id of every hit of ``query`` on a web node."""
    found = get(port, "/api/v1/search", q=query, per_page=50, collapse="0")
    return {hit["id"]: hit["story_id"] for hit in found["hits"]}


def leader_now(tmp_path: Path) -> str:
    """Return the poller that last said it assigns stories."""
    said = [
        (line.split(" INFO ")[0], name)
        for name in ("poller-a", "poller-b")
        for line in log_lines(tmp_path / f"{name}.log", "INFO")
        if "assigns stories now" in line
    ]
    assert said
    return max(said)[1]


def check_followers_agree(store: Store, ports: list[int], feeds: int) -> None:
    """Both web nodes show the stories the store holds: the same top stories, search hits and related items."""
    for port in ports:
        until(lambda p=port: (s := replica_status(p)) and s["ok"] and s["lag_changes"] == 0, 60, "replica caught up")
    assigned = members(store)
    listed = [stories_seen(port) for port in ports]
    assert listed[0] == listed[1]
    explosion = [s for s in listed[0] if s[1] == 3]
    assert len(explosion) == 1
    story_id, _, article_ids = explosion[0]
    assert {assigned[i] for i in article_ids} == {story_id}
    for port in ports:
        hits = story_ids_of_hits(port, "Norvane")
        assert set(article_ids) <= set(hits) and {hits[i] for i in article_ids} == {story_id}
        for n in range(feeds):
            hits = story_ids_of_hits(port, f"zqfeed{n:02d}")
            assert len(hits) == 5 and hits == {i: assigned[i] for i in hits}
        related = get(port, "/api/v1/related", entry=article_ids[0], limit=5)["items"]
        assert set(article_ids[1:]) <= {item["id"] for item in related}
    assert story_ids_of_hits(ports[0], words(3, 2)) == story_ids_of_hits(ports[1], words(3, 2))


def test_one_poller_assigns_stories_and_followers_show_the_same(pg_url: str, tmp_path: Path) -> None:
    store = open_store(pg_url)
    with FeedHosts(HOSTS[:2]) as hosts:
        hosts.latency = 0.05
        serve_outlets(hosts, store)
        serve_feeds(hosts, store, 12)
        expected = 12 * 5 + len(ARTICLES)
        ports = [free_port(), free_port()]
        node = 'claim_batch = 2\nlease = "3s"'
        configs = {n: write_config(tmp_path / f"{n}.toml", pg_url, n, node=node) for n in ("poller-a", "poller-b")}
        pollers = {n: start_node(config, tmp_path / f"{n}.log", "poller") for n, config in configs.items()}
        webs = [
            start_node(
                write_config(tmp_path / f"{n}.toml", pg_url, n, port=port), tmp_path / f"{n}.log", "serve", "--follow"
            )
            for n, port in zip(("web-a", "web-b"), ports, strict=True)
        ]
        with running(*pollers.values(), *webs):
            until(lambda: all_assigned(store, expected), 120, "every entry stored and in a story")
            said = [
                line for n in pollers for line in log_lines(tmp_path / f"{n}.log", "INFO") if "assigns stories" in line
            ]
            assert len(said) == 1  # one assigner at a time
            check_followers_agree(store, ports, 12)

            # `newsdesk poll` beside the pollers: refused in one line.
            refused = newsdesk(configs["poller-a"], "poll", check=False)
            assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
            assert "`newsdesk poller` nodes" in refused.stderr and "Traceback" not in refused.stderr

            # The commit-order trap: a transaction takes a lower sequence number and commits after the
            # pollers stored (and committed) the entries of four more feeds.
            held = open_store(pg_url)
            held_feed = store.add_feed("https://held.example/feed")
            store.set_feed_enabled(held_feed.id, False)  # its entry is written here, not polled
            late = make_entry(held_feed.key, 1)
            with held.transaction():
                held.save_entries(held_feed.id, [late])
                serve_feeds(hosts, store, 4, first=12)
                until(lambda: store.count_entries() == expected + 20, 60, "the later feeds stored")
                assert late.id not in members(store)
            held.close()
            with store.engine.connect() as conn:
                late_seq, later_seq = conn.execute(
                    sa.text(
                        "SELECT (SELECT seq FROM changes WHERE entry_id = :late), "
                        "(SELECT min(c.seq) FROM changes c JOIN entries e ON e.id = c.entry_id WHERE e.text LIKE 'zq12%')"
                    ),
                    {"late": late.id},
                ).one()
            assert late_seq < later_seq  # a sequence cursor would have moved past it before it committed
            expected += 21
            until(lambda: all_assigned(store, expected), 60, "the late entry in a story too")

            # Every node's connections ended: each reconnects; the assigner takes its lock again.
            assert end_sessions(store.engine, NODE_SESSIONS) >= 4
            serve_feeds(hosts, store, 4, first=16)
            expected += 20
            until(lambda: all_assigned(store, expected), 90, "feeds added after the disconnect in stories")

            # SIGKILL the assigning poller: the other takes over from the stored position.
            leader = leader_now(tmp_path)
            pollers[leader].send_signal(signal.SIGKILL)
            pollers[leader].wait(timeout=10)
            serve_feeds(hosts, store, 4, first=20)
            expected += 20
            until(lambda: all_assigned(store, expected), 90, "feeds added after the kill in stories")
            survivor = "poller-b" if leader == "poller-a" else "poller-a"
            assert leader_now(tmp_path) == survivor
            assert_each_entry_has_one_story(store)
            check_followers_agree(store, ports, 24)
    for name in ("poller-a", "poller-b", "web-a", "web-b"):
        text = (tmp_path / f"{name}.log").read_text()
        assert "Traceback" not in text
        assert len(log_lines(tmp_path / f"{name}.log", "ERROR")) <= 2, log_lines(tmp_path / f"{name}.log", "ERROR")
        assert text.count("lost the story lock") <= 1  # said once, not per retry
    store.close()
