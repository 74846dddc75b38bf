"""Searches and related coverage while the indexer commits: leases, segments, and a real server under mixed load."""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import pytest

from aggregator.poller import update_feeds
from index.search.engine import search
from tests.fixtures.search.world import NOW, build_world, bulk_feed
from web.app import create_app
from web.services import Services

from .support.live import LiveServer


def add_round(services: Services, tmp_path: Path, number: int) -> None:
    """Poll one more feed of tide reports into the store and commit it to the index (a new segment)."""
    path = tmp_path / f"round-{number}.xml"
    body = bulk_feed().replace("tide-", f"r{number}-tide-").replace("/report/", f"/r{number}/report/")
    path.write_text(body.replace("Tide Tables", f"Tide Tables {number}"), encoding="utf-8")
    feed = services.store.add_feed(str(path))
    for result in update_feeds(services.store, [feed], services.config):
        assert result.error is None, result
    services.indexer().catch_up()


def test_a_leased_searcher_stays_open_across_a_commit(tmp_path: Path) -> None:
    services = build_world(tmp_path)
    try:
        with services.index_reader.lease() as first:
            assert first is not None
            add_round(services, tmp_path, 1)
            with services.index_reader.lease() as second:
                assert second is not None and second is not first
            # The query holding the old searcher can still read it (it was closed under it before leases).
            assert not first.reader().is_closed
            assert first.doc_frequency("text", "harbour") > 0
        assert first.reader().is_closed  # closed at its last lease's end, not leaked
        with services.index_reader.lease() as third:
            assert third is second and third is not None and not third.reader().is_closed
    finally:
        services.close()


def test_fuzzy_and_prefix_terms_work_over_several_segments(tmp_path: Path) -> None:
    # Whoosh's cursor over several segments raised NotImplementedError: every fuzzy query on an index
    # the indexer had committed to twice answered 500.
    services = build_world(tmp_path)
    try:
        add_round(services, tmp_path, 1)
        searcher = services.index_reader.searcher()
        assert searcher is not None and len(searcher.reader().leaf_readers()) > 1
        fuzzy = search(services.index_reader, services.store, "harbor~", now=NOW)
        assert fuzzy.total >= 1 and any("harbour" in h.entry.title.lower() for h in fuzzy.hits)
        tides = search(services.index_reader, services.store, "tid~ report", now=NOW, collapse=False)
        assert (
            tides.total == search(services.index_reader, services.store, "tide report", now=NOW, collapse=False).total
        )
        assert search(services.index_reader, services.store, "harb*", now=NOW).total == fuzzy.total
    finally:
        services.close()


#: What the load's clients ask for: plain words (the numpy path), fuzzy and prefix terms, OR, exclusions.
QUERIES = (
    "army festival",
    "harbour",
    "tide report",
    "dock strike",
    "harbor~",
    "tid*",
    "election OR ferry",
    "-strike port",
)


@pytest.mark.slow
def test_mixed_load_while_the_indexer_commits_answers_no_500(tmp_path: Path) -> None:
    services = build_world(tmp_path)
    # No rate limit: twenty clients on one address would soon get 429s from the related API.
    services.config = replace(services.config, server=replace(services.config.server, rate_limit_per_minute=0))
    app = create_app(services.config, services)
    ids = [hit["id"] for hit in app.test_client().get("/api/v1/search?q=tide&per_page=40").get_json()["hits"]]
    statuses: Counter[int] = Counter()
    failures: list[tuple[str, int, bytes]] = []
    done = threading.Event()

    def client(seed: int, host: str, port: int) -> None:
        pick = random.Random(seed)
        while not done.is_set():
            roll = pick.random()
            if roll < 0.55:
                path = "/api/v1/search?q=" + quote(pick.choice(QUERIES))
            elif roll < 0.75:
                path = "/api/v1/related?entry=" + pick.choice(ids)
            elif roll < 0.85:
                path = "/api/v1/entries/" + pick.choice(ids)
            elif roll < 0.95:
                path = "/entries/" + pick.choice(ids)
            else:
                path = "/?q=" + quote(pick.choice(QUERIES))
            connection = http.client.HTTPConnection(host, port, timeout=30)
            try:
                connection.request("GET", path)
                answer = connection.getresponse()
                body = answer.read()
            finally:
                connection.close()
            statuses[answer.status] += 1
            if answer.status >= 500:
                failures.append((path, answer.status, body[:200]))

    try:
        with LiveServer(app, threads=8) as live:
            host, port = live.server.effective_host, live.server.effective_port
            clients = [threading.Thread(target=client, args=(n, host, port)) for n in range(20)]
            for thread in clients:
                thread.start()
            started = time.monotonic()
            try:
                for number in range(1, 7):
                    add_round(services, tmp_path, number)
                    if number % 3 == 0:
                        services.indexer().optimize()  # a merge replaces every segment under the readers
            finally:
                done.set()
                for thread in clients:
                    thread.join(timeout=60)
            elapsed = time.monotonic() - started
    finally:
        services.close()
    assert failures == []
    # The load really ran during the commits: many answers of every kind, all of them 200.
    assert set(statuses) == {200} and sum(statuses.values()) >= 200, (statuses, elapsed)


def test_threads_sharing_the_index_read_the_same_answers_as_one(tmp_path: Path) -> None:
    # Whoosh's readers keep one file position per segment file and seek before each read: two threads
    # reading one searcher at once could read each other's bytes (an unpickling or decompression
    # error, or wrong postings). Searches and related coverage in eight threads, taking turns as often
    # as the interpreter allows, must answer exactly what they answer one at a time.
    import sys

    from index.related.finder import query_for_entry

    services = build_world(tmp_path)
    add_round(services, tmp_path, 1)  # two segments
    interval = sys.getswitchinterval()
    try:
        entries = list(services.store.iter_entries())[:12]

        def answers() -> list[object]:
            found: list[object] = []
            for query in QUERIES:
                result = search(services.index_reader, services.store, query, per_page=40)
                found.append([hit.entry.id for hit in result.hits])
            for entry in entries:
                found.append([item.entry.id for item in services.related.find(query_for_entry(entry), limit=5)])
            return found

        alone = answers()
        services.related._answers.clear()
        sys.setswitchinterval(1e-6)
        results: list[object] = []
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                for _ in range(3):
                    # Every thread reads the index itself, not what another thread left in a cache.
                    services.related._version = None  # type: ignore[assignment]
                    results.append(answers())
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert results == [alone] * 24
    finally:
        sys.setswitchinterval(interval)
        services.close()
