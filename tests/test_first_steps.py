"""An operator's first minutes: an empty index, a busy port, missing optional dependencies, a quick `--help`."""

from __future__ import annotations

import ast
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from aggregator.config import Config
from aggregator.features import FEATURES, feature_status
from aggregator.poller import update_feeds
from index.related.postings import IndexView
from web.app import create_app
from web.services import Services, build_services

from .conftest import REPO, make_config
from .support.cli import NEWSDESK, newsdesk
from .support.httpserver import FeedServer, Reply
from .support.live import LiveServer
from .test_full_content import article_page, summary_feed

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
    "/api/v1/entries",
    "/api/v1/entries?source=Harbour+Gazette&sort=oldest",
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
    for path in ("/api/v1/entries", "/api/v1/entries?source=Harbour+Gazette&sort=oldest"):
        body = answers[path].json()
        assert (body["total"], body["entries"], body["pages"]) == (0, [], 1), (state, path)
    assert answers["/api/v1/related?title=Fishermen+report+record+mackerel+catch&text=The+harbour+was+busy"].json() == {
        "items": []
    }
    assert "<entry>" not in answers["/search.atom?q=test"].text
    assert answers["/search.atom?q=test"].headers["content-type"].startswith("application/atom+xml")
    assert "<item>" not in answers["/search.rss?q=test"].text
    assert "0 results" in answers["/?q=test"].text
    # ...and told why: nothing is indexed yet, not a spelling to check.
    assert "No articles yet" in answers["/?q=test"].text and "Check the spelling" not in answers["/?q=test"].text
    # The entry page hides a failing sidebar from its reader; the log must not have needed to.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_related_candidates_on_an_index_without_segments(tmp_path: Path) -> None:
    # No HTTP request reaches candidate retrieval on an empty index today (no term is shared with
    # anything), but the per-version arrays must still build: a query may race the first commit.
    services = build_services(make_config(tmp_path))
    try:
        services.indexer().catch_up()
        searcher = services.index_reader.searcher()
        assert searcher is not None and searcher.doc_count_all() == 0
        view = IndexView(searcher)
        assert view.count == 0 and view.published.size == 0
        table = services.index_reader.tables.table(searcher)
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


# --------------------------------------------------------------------------- a port already in use


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NEWSDESK_CONFIG"}
    return {**env, **extra}


def _run(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NEWSDESK, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env or _environment(),
        stdin=subprocess.DEVNULL,
    )


def test_the_first_poll_of_a_new_install_builds_the_index_without_a_warning(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    # What the welcome page tells a newcomer to run: nothing is wrong, so nothing may read as if it were.
    feed_server.route("/harbour.xml", Reply(200, FIXTURE.read_bytes(), {"Content-Type": "application/rss+xml"}))
    config = tmp_path / "config.toml"
    config.write_text(
        f'data_dir = "data"\n[polling]\nper_host_delay = 0\n[[feeds]]\nurl = "{feed_server.url("/harbour.xml")}"\n'
    )
    polled = _run(config, "poll", "--once")
    assert polled.returncode == 0, polled.stderr
    assert "WARNING" not in polled.stderr and "rebuil" not in polled.stderr, polled.stderr
    assert "search index built from the store" in polled.stderr, polled.stderr
    found = _run(config, "search", "lighthouse", "--json")
    assert found.returncode == 0 and json.loads(found.stdout)["total"] >= 1, found.stdout


def test_serve_and_run_on_a_port_in_use_say_so_in_one_line(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.route("/harbour.xml", Reply(200, FIXTURE.read_bytes(), {"Content-Type": "application/rss+xml"}))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = tmp_path / "config.toml"
        config.write_text(
            f'data_dir = "data"\n[server]\nport = {port}\n[[feeds]]\nurl = "{feed_server.url("/harbour.xml")}"\n'
        )
        expected = (
            f"newsdesk: error: cannot listen on 127.0.0.1:{port}: address already in use "
            f"(set server.port in {config.resolve()} or pass --port)\n"
        )
        for command in (["serve"], ["run", "--tick", "0.2"]):
            started = time.monotonic()
            result = _run(config, *command)
            assert (result.returncode, result.stdout, result.stderr) == (1, "", expected), command
            assert time.monotonic() - started < 30
        # `run` stopped before its scheduler could poll anything.
        assert feed_server.requests == []


# --------------------------------------------------------------------------- optional features


def _runtime_closure() -> set[str]:
    """Return the distributions pip installs for pyproject's [project] dependencies, counting no extras.

    An extra's requirements are left out on purpose: resolvers disagree on extra names (jusText asks
    for lxml's "html_clean", lxml calls it "html-clean", pip dropped it), which is how production
    lost lxml_html_clean while the test extra happened to bring it.
    """
    pending = [Requirement(r) for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in seen or (requirement.marker is not None and not requirement.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        try:
            pending += [Requirement(r) for r in metadata.requires(requirement.name) or ()]
        except metadata.PackageNotFoundError:
            continue  # not installed here: its own requirements cannot be read (the import below fails instead)
    return seen


def _imported_names() -> list[str]:
    """Return every absolute module name our packages import, at module level or inside functions."""
    names: set[str] = set()
    for package in ("aggregator", "index", "web"):
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module)
    return sorted(names)


#: Run in a fresh interpreter: only distributions in ALLOWED (plus the standard library and our own
#: packages) may be imported, as in a virtualenv made by `pip install .`; then import everything.
_ONLY_RUNTIME = """
import importlib, importlib.abc, json, sys
from importlib import metadata

allowed, names = json.loads(sys.argv[1]), json.loads(sys.argv[2])
owners = metadata.packages_distributions()
canonical = lambda name: name.lower().replace("_", "-").replace(".", "-")

class OnlyRuntime(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        dists = {canonical(d) for d in owners.get(top, ())}
        if dists and not dists & set(allowed):
            raise ImportError(f"{top} belongs to {sorted(dists)}, not to the runtime dependencies")
        return None

sys.meta_path.insert(0, OnlyRuntime())
for name in names:
    importlib.import_module(name)
from aggregator.features import feature_status
print(json.dumps(feature_status()))
"""


def test_runtime_dependencies_provide_every_import_and_feature() -> None:
    allowed = sorted(_runtime_closure() | {"newsdesk"})
    assert "lxml-html-clean" in allowed
    result = subprocess.run(
        [sys.executable, "-c", _ONLY_RUNTIME, json.dumps(allowed), json.dumps(_imported_names())],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    status = json.loads(result.stdout)
    assert set(status) == {feature.name for feature in FEATURES}
    assert status == dict.fromkeys(status), status


def test_a_missing_optional_dependency_is_reported_everywhere(tmp_path: Path, feed_server: FeedServer) -> None:
    # What a `pip install -e .` under lxml 6 gave before lxml_html_clean was declared: trafilatura fails to import.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "sitecustomize.py").write_text("import sys\nsys.modules['lxml_html_clean'] = None\n")
    without = _environment(PYTHONPATH=str(shadow))
    feed_server.route("/feed.xml", Reply(200, summary_feed(feed_server.base)))
    feed_server.route("/news/pier", Reply(200, article_page("North pier to be rebuilt"), {"Content-Type": "text/html"}))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "config.toml"
    config.write_text(
        f'data_dir = "data"\n[polling]\nper_host_delay = 0\n'
        f'[[feeds]]\nurl = "{feed_server.url("/feed.xml")}"\nfull_content = true\n'
    )

    status = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from aggregator.features import feature_status as s; print(json.dumps(s()))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=without,
        cwd=REPO,
    )
    reported = json.loads(status.stdout)
    assert reported["brotli"] is None
    assert (
        "trafilatura cannot be imported" in reported["full_content"] and "lxml_html_clean" in reported["full_content"]
    )
    assert feature_status() == dict.fromkeys(reported)  # this environment has everything

    # The poll stores the feed's own text, fetches no article page it cannot use, and says why.
    polled = _run(config, "poll", env=without)
    assert polled.returncode == 0, polled.stderr
    assert "full_content is on but unavailable (trafilatura cannot be imported" in polled.stdout
    assert "2 new" in polled.stdout and feed_server.hits("/news/pier") == []
    listed = _run(config, "feeds", "list", env=without)
    assert "warning: full_content is on but unavailable (trafilatura cannot be imported" in listed.stdout
    assert "lxml_html_clean" in listed.stdout
    as_json = json.loads(_run(config, "feeds", "list", "--json", env=without).stdout)
    assert len(as_json["warnings"]) == 1 and "trafilatura" in as_json["warnings"][0]
    # With the library importable, the same feed carries no warning.
    assert json.loads(_run(config, "feeds", "list", "--json").stdout)["warnings"] == []

    # `serve` says it at start-up, once, and /api/v1/feeds shows it (--port overriding the config's 8080).
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        server = subprocess.Popen(
            [NEWSDESK, "--config", str(config), "serve", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=without,
        )
    try:
        feeds = _wait_for(f"http://127.0.0.1:{port}/api/v1/feeds")
        assert "trafilatura cannot be imported" in feeds.json()["feeds"][0]["warnings"][0]
        page = httpx.get(f"http://127.0.0.1:{port}/feeds", timeout=30)
        assert page.status_code == 200 and "full_content is on but unavailable" in page.text
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    lines = [line for line in log.read_text().splitlines() if "optional feature full_content is unavailable" in line]
    assert len(lines) == 1 and "1 feed(s) ask for it" in lines[0], log.read_text()


def _wait_for(url: str, timeout: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


# --------------------------------------------------------------------------- a quick --help

#: Libraries no `--help` may import: seconds of start-up on a busy machine, for nothing.
HEAVY = (
    "flask",
    "werkzeug",
    "jinja2",
    "sqlalchemy",
    "whoosh",
    "numpy",
    "httpx",
    "lxml",
    "feedparser",
    "nh3",
    "apscheduler",
    "waitress",
    "trafilatura",
)

_EVERY_HELP = """
import json, sys
import click
from web.cli import main

def helps(command, path):
    yield [*path, "--help"]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from helps(sub, [*path, name])

shown = []
for args in helps(main, []):
    try:
        main.main(args, prog_name="newsdesk", standalone_mode=False)
    except SystemExit:
        pass
    shown.append(args)
print(json.dumps({"shown": shown, "heavy": sorted(m for m in HEAVY if m in sys.modules)}))
"""


def test_help_imports_no_heavy_library() -> None:
    code = f"HEAVY = {HEAVY!r}\n{_EVERY_HELP}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert ["feeds", "list", "--help"] in report["shown"] and ["search", "--help"] in report["shown"]
    assert report["heavy"] == []
    # The console script answers too (its imports are the module's, checked above).
    assert "Usage: newsdesk" in subprocess.run([NEWSDESK, "--help"], capture_output=True, text=True, timeout=60).stdout
