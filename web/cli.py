"""The `newsdesk` command: a thin click layer over the same functions the web uses."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from aggregator.config import Config, load_config, resolve_config_path
from aggregator.errors import FeedError, NewsdeskError
from aggregator.fetch import fetch_url, is_local, make_client
from aggregator.models import Feed
from aggregator.normalize import normalize_feed
from aggregator.parse import parse_feed
from aggregator.store import host_title
from aggregator.update import feed_context, limits_from_config, sync_config_feeds, update_feeds

from .serialize import entry_json, feed_json, iso
from .services import Services, build_services


class CliState:
    """Lazily loaded config and services for one CLI invocation."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None
        self._services: Services | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            path = resolve_config_path(self.config_path)
            if not path.exists() and self.config_path is None:
                # No config file: run on the embedded defaults (data under ./data, no feeds).
                from aggregator.config import config_from_dict

                self._config = config_from_dict({}, label=str(path), base_dir=Path.cwd())
            else:
                self._config = load_config(path)
        return self._config

    @property
    def services(self) -> Services:
        if self._services is None:
            self._services = build_services(self.config)
        return self._services


def fail(message: str) -> None:
    """Print one clear error line and exit non-zero."""
    click.echo(f"newsdesk: error: {message}", err=True)
    sys.exit(1)


class NewsdeskGroup(click.Group):
    """Turns every NewsdeskError into one line on stderr instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NewsdeskError as exc:
            fail(str(exc))


@click.group(cls=NewsdeskGroup)
@click.option("--config", "config_path", metavar="PATH", help="Config file (default: $NEWSDESK_CONFIG or ./config.toml).")
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """Newsdesk: aggregate news feeds, search them, embed related coverage."""
    ctx.obj = CliState(config_path)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


def catch_up_index(services: Services) -> None:
    """Bring the index up to date with the store's change log."""
    stats = services.indexer().catch_up()
    if stats.upserts or stats.deletes:
        logging.getLogger("newsdesk.index").info(
            "index caught up to seq=%d (+%d -%d)", stats.seq, stats.upserts, stats.deletes
        )


@main.command()
@click.option("--once", is_flag=True, help="Check the feeds that are due, index, and exit.")
@click.option("--all", "check_all", is_flag=True, help="Check every enabled feed now (not those backing off).")
@click.option("--no-index", is_flag=True, help="Store entries but leave indexing to a later run.")
@click.argument("feed", required=False)
@click.pass_obj
def poll(state: CliState, once: bool, check_all: bool, no_index: bool, feed: str | None) -> None:
    """Check feeds for new entries (FEED: one feed's URL or id)."""
    services = state.services
    sync_config_feeds(services.store, state.config)
    now = datetime.now(UTC)
    if feed:
        found = services.store.find_feed(feed) or (services.store.get_feed(int(feed)) if feed.isdigit() else None)
        if found is None:
            fail(f"no feed {feed!r}; see `newsdesk feeds list`")
        assert found is not None
        targets = [found]
    elif check_all:
        targets = []
        for f in services.store.list_feeds(enabled_only=True):
            waiting = f.retry_after_until if f.retry_after_until and f.retry_after_until > now else None
            if waiting or (f.consecutive_failures and f.next_check_at and f.next_check_at > now):
                due = iso(waiting or f.next_check_at)
                click.echo(f"skipped {f.url}: {'server asked us to wait' if waiting else 'backing off'} until {due}")
                continue
            targets.append(f)
    else:
        targets = services.store.due_feeds(now)
    results = update_feeds(services.store, targets, state.config)
    for result in results:
        if result.error:
            click.echo(f"error   {result.url}: {result.error}")
        else:
            click.echo(f"ok      {result.url}: HTTP {result.status}, {result.new_entries} new, {result.updated_entries} updated")
    if not no_index:
        catch_up_index(services)
    if not once and not feed and not check_all:
        click.echo("(use `newsdesk run` to keep polling on schedule)")


@main.command()
@click.pass_obj
def reindex(state: CliState) -> None:
    """Rebuild the search index from the store and swap it in atomically."""
    services = state.services
    stats = services.indexer().rebuild(services.store)
    click.echo(f"reindexed {stats.upserts} entries (change seq {stats.seq})")


@main.command("index")
@click.pass_obj
def index_command(state: CliState) -> None:
    """Apply pending store changes to the search index."""
    services = state.services
    stats = services.indexer().catch_up()
    click.echo(f"indexed {stats.upserts} upserts, {stats.deletes} deletes (change seq {stats.seq})")


@main.command()
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry per line.")
@click.pass_obj
def inspect(state: CliState, source: str, as_json: bool) -> None:
    """Fetch, parse and normalize SOURCE (URL or file) and print its entries; stores nothing."""
    config = state.config
    try:
        with make_client(limits_from_config(config)) as client:
            result = fetch_url(client, source, user_agent=config.polling.user_agent, limits=limits_from_config(config))
        if result.status != 200:
            fail(f"{source}: the server answered HTTP {result.status}")
        parsed = parse_feed(result.body, result.headers, url=result.final_url)
    except FeedError as exc:
        fail(str(exc))
        return
    now = datetime.now(UTC)
    feed = Feed(id=0, key=source, url=source, title=parsed.title or host_title(source), site_url=parsed.site_url)
    final_url = result.final_url if not is_local(source) else source
    context = feed_context(feed, parsed, final_url, now)
    for entry in normalize_feed(parsed, context):
        if as_json:
            click.echo(json.dumps(entry_json(entry), ensure_ascii=False))
        else:
            click.echo(f"{iso(entry.published_at)}  {entry.title}\n    {entry.url}\n    by {', '.join(entry.authors) or '-'}")


@main.command("search")
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.option("--page", default=1, show_default=True)
@click.option("--per-page", default=10, show_default=True)
@click.pass_obj
def search_command(state: CliState, query: str, as_json: bool, page: int, per_page: int) -> None:
    """Search the index."""
    from index.search import search

    services = state.services
    results = search(services.reader, services.store, query, page=page, per_page=per_page)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "total": results.total,
                    "page": results.page,
                    "notices": list(results.notices),
                    "hits": [
                        {
                            "id": h.entry.id,
                            "url": h.entry.url,
                            "title": h.entry.title,
                            "source": h.entry.source.title,
                            "published_at": iso(h.entry.published_at),
                            "snippet": h.snippet,
                            "score": round(h.score, 4),
                        }
                        for h in results.hits
                    ],
                },
                ensure_ascii=False,
            )
        )
        return
    for notice in results.notices:
        click.echo(f"note: {notice}")
    click.echo(f"{results.total} results")
    for h in results.hits:
        click.echo(f"- {h.entry.title}  [{h.entry.source.title}, {iso(h.entry.published_at)}]\n  {h.entry.url}")


@main.group()
def feeds() -> None:
    """List, add and remove feeds."""


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per feed per line.")
@click.pass_obj
def feeds_list(state: CliState, as_json: bool) -> None:
    """Show every feed and its polling state."""
    services = state.services
    sync_config_feeds(services.store, state.config)
    for feed in services.store.list_feeds():
        if as_json:
            click.echo(json.dumps(feed_json(feed), ensure_ascii=False))
        else:
            status = feed.last_status if feed.last_status is not None else "-"
            click.echo(
                f"{feed.id:>4} {'on ' if feed.enabled else 'off'} {feed.url}\n"
                f"     {feed.title} | last check {iso(feed.last_checked_at) or 'never'} | status {status} | "
                f"failures {feed.consecutive_failures} | next {iso(feed.next_check_at) or '-'} | "
                f"{feed.entry_count} entries"
                + (f"\n     error: {feed.last_error}" if feed.last_error else "")
                + (f"\n     disabled: {feed.disabled_reason}" if feed.disabled_reason else "")
            )


@feeds.command("add")
@click.argument("url")
@click.option("--title", default=None)
@click.option("--tag", "tags", multiple=True)
@click.pass_obj
def feeds_add(state: CliState, url: str, title: str | None, tags: tuple[str, ...]) -> None:
    """Add a feed by URL or path (polled on the next scheduler tick)."""
    from aggregator.config import check_feed_url

    check_feed_url(url, "url")
    feed = state.services.store.add_feed(url, title=title, tags=tags, origin="cli")
    click.echo(f"added feed {feed.id}: {feed.url}")


@feeds.command("remove")
@click.argument("feed")
@click.pass_obj
def feeds_remove(state: CliState, feed: str) -> None:
    """Remove a feed (by URL or id) and its entries."""
    store = state.services.store
    found = store.find_feed(feed) or (store.get_feed(int(feed)) if feed.isdigit() else None)
    if found is None:
        fail(f"no feed {feed!r}; see `newsdesk feeds list`")
    assert found is not None
    removed = store.remove_feed(found.id)
    click.echo(f"removed feed {found.id} ({found.url}) and {removed} entries")


def _serve_forever(config: Config, services: Services) -> None:
    from waitress import serve as waitress_serve

    from .app import create_app

    app = create_app(config, services)
    click.echo(f"Newsdesk on http://{config.server.host}:{config.server.port}/", err=True)
    waitress_serve(app, host=config.server.host, port=config.server.port, threads=config.server.threads, ident="newsdesk")


@main.command()
@click.pass_obj
def serve(state: CliState) -> None:
    """Serve the web front end only (production WSGI server; reads the index, never writes it)."""
    _serve_forever(state.config, state.services)


@main.command()
@click.option("--tick", default=15.0, show_default=True, help="Seconds between scheduler checks for due feeds.")
@click.pass_obj
def run(state: CliState, tick: float) -> None:
    """Poll feeds on schedule, index, and serve the web front end, in one process."""
    from aggregator.scheduler import build_scheduler

    services = state.services
    sync_config_feeds(services.store, state.config)
    lock = threading.Lock()

    def after_poll() -> None:
        with lock:
            catch_up_index(services)

    catch_up_index(services)
    scheduler = build_scheduler(services.store, state.config, after_poll=after_poll, tick_seconds=tick)
    scheduler.start()

    def stop(signum: int, frame: Any) -> None:
        scheduler.shutdown(wait=False)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        _serve_forever(state.config, services)
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)


if __name__ == "__main__":  # pragma: no cover
    main()
