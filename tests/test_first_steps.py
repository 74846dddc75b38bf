"""An operator's first minutes: an empty index, a busy port, missing optional dependencies, a quick `--help`."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from aggregator.config import Config
from aggregator.update import update_feeds
from index.related_postings import IndexView
from web.app import create_app
from web.services import Services, build_services

from .conftest import make_config
from .support.cli import newsdesk
from .support.live import LiveServer

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "e2e" / "harbour.xml"

# --------------------------------------------------------------------------- an empty or missing index


def _poll_fixture(services: Services, config: Config) -> None:
    feed = services.store.add_feed(str(FIXTURE))
    for result in update_feeds(services.store, [feed], config):
        assert result.error is None, result


def _missing(services: Services, config: Config) -> None:
    """A fresh install served by `newsdesk serve` before anything was indexed: no index directory at all."""


def _empty(services: Services, config: Config) -> None:
    """A fresh `newsdesk run` whose feeds are not reachable yet: an index without a single segment."""
    services.indexer().catch_up()


def _store_only(services: Services, config: Config) -> None:
    """Entries stored (`poll --no-index`, or a first poll under way) but the empty index not caught up yet."""
    services.indexer().catch_up()
    _poll_fixture(services, config)


def _emptied(services: Services, config: Config) -> None:
    """Every entry indexed, then removed, and the index's segments merged."""
    _poll_fixture(services, config)
    indexer = services.indexer()
    indexer.catch_up()
    for feed in services.store.list_feeds():
        services.store.remove_feed(feed.id)
    indexer.catch_up()
    indexer.optimize()


INDEX_STATES: dict[str, Callable[[Services, Config], None]] = {
    "missing": _missing,
    "empty": _empty,
    "store-only": _store_only,
    "emptied": _emptied,
}

#: Every GET a reader can make that reads the index (search, facets, suggestions, feeds, related, embeds).
READ_PATHS = (
    "/",
    "/?q=test",
    "/?q=harbr+strike",
    "/?q=test&sort=newest&lang=en&source=Harbour+Gazette&tag=Port",
    "/?source=Harbour+Gazette",
    "/api/v1/search?q=test",
    "/api/v1/search?q=iran+OR+harb*+-strike",
    "/api/v1/search?q=lang:en+tag:port+source:harbour&from=2024-01-01&to=2024-12-31",
    "/api/v1/search?lang=en",
    "/api/v1/search?q=mackrel",
    "/search.atom?q=test",
    "/search.rss?q=test",
    "/api/v1/related?title=Fishermen+report+record+mackerel+catch&text=The+harbour+was+busy",
    "/embed/related?title=Fishermen+report+record+mackerel+catch",
    "/api/v1/feeds",
    "/feeds",
    "/healthz",
)


@pytest.fixture(params=list(INDEX_STATES))
def index_state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Services]]:
    """Yield a state name and Services whose index is in that state."""
    config = make_config(tmp_path)
    services = build_services(config)
    INDEX_STATES[request.param](services, config)
    yield request.param, services
    services.close()


def test_every_read_path_answers_on_an_empty_or_missing_index(
    index_state: tuple[str, Services], caplog: pytest.LogCaptureFixture
) -> None:
    state, services = index_state
    paths = list(READ_PATHS)
    entries = list(services.store.iter_entries())
    for entry in entries[:1]:
        paths += [
            f"/entries/{quote(entry.id, safe='')}",
            f"/api/v1/entries/{quote(entry.id, safe='')}",
            f"/api/v1/related?entry={quote(entry.id, safe='')}",
            f"/embed/related?entry={quote(entry.id, safe='')}",
            f"/oembed?url={quote(entry.url, safe='')}",
        ]
    caplog.set_level(logging.WARNING)
    with LiveServer(create_app(services.config, services)) as live:
        answers = {path: httpx.get(live.base + path, timeout=30) for path in paths}
    assert {path: r.status_code for path, r in answers.items() if r.status_code != 200} == {}, state
    # Nothing is indexed in any of these states, so nothing is found, and nobody is told otherwise.
    for path in ("/api/v1/search?q=test", "/api/v1/search?q=iran+OR+harb*+-strike", "/api/v1/search?lang=en"):
        body = answers[path].json()
        assert (body["total"], body["hits"]) == (0, []), (state, path)
    assert answers["/api/v1/related?title=Fishermen+report+record+mackerel+catch&text=The+harbour+was+busy"].json() == {
        "items": []
    }
    assert "<entry>" not in answers["/search.atom?q=test"].text
    assert answers["/search.atom?q=test"].headers["content-type"].startswith("application/atom+xml")
    assert "<item>" not in answers["/search.rss?q=test"].text
    assert "0 results" in answers["/?q=test"].text
    # The entry page hides a failing sidebar from its reader; the log must not have needed to.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_related_candidates_on_an_index_without_segments(tmp_path: Path) -> None:
    # No HTTP request reaches candidate retrieval on an empty index today (no term is shared with
    # anything), but the per-version arrays must still build: a query may race the first commit.
    services = build_services(make_config(tmp_path))
    try:
        services.indexer().catch_up()
        searcher = services.reader.searcher()
        assert searcher is not None and searcher.doc_count_all() == 0
        view = IndexView(searcher)
        assert view.count == 0 and view.published.size == 0
        table = services.reader.tables.table(searcher)
        assert table.size == 0 and table.ids == []
    finally:
        services.close()


def _cli_config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    return path


@pytest.mark.parametrize("indexed", [False, True], ids=["missing", "empty"])
def test_cli_search_on_a_fresh_install(tmp_path: Path, indexed: bool) -> None:
    config = _cli_config(tmp_path)
    if indexed:
        assert "indexed 0 upserts" in newsdesk(config, "index").stdout
    found = newsdesk(config, "search", "iran", check=False)
    assert (found.returncode, found.stderr) == (0, ""), found.stderr
    assert found.stdout.splitlines()[0] == "0 results (0 stories), page 1 of 1"
    as_json = newsdesk(config, "search", "--json", "--lang", "en", "iran OR harb*", check=False)
    assert (as_json.returncode, as_json.stderr) == (0, ""), as_json.stderr
    body = json.loads(as_json.stdout)
    assert (body["total"], body["hits"]) == (0, [])
