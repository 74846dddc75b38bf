"""The `newsdesk` command: a thin click layer over the same functions the web uses."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from aggregator.config import Config, load_config, resolve_config_path
from aggregator.errors import FeedError, IndexBusyError, NewsdeskError, SearchIndexError
from aggregator.fetch import fetch_url, is_local, make_client
from aggregator.models import Feed
from aggregator.normalize import normalize_feed
from aggregator.parse import parse_feed
from aggregator.store import host_title
from aggregator.update import feed_context, limits_from_config, sync_config_feeds

from .lifecycle import Shutdown, exit_now, exit_soon, serve_until_stopped
from .serialize import entry_json, iso
from .services import Services, build_services

log = logging.getLogger("newsdesk")


class CliState:
    """Lazily loaded config and services for one CLI invocation."""

    def __init__(self, config_path: str | None, verbose: bool = False) -> None:
        self.config_path = config_path
        self.verbose = verbose
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
            if not self.verbose:
                logging.getLogger().setLevel(self._config.log_level.upper())
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
@click.option(
    "--config", "config_path", metavar="PATH", help="Config file (default: $NEWSDESK_CONFIG or ./config.toml)."
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug details.")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """Newsdesk: aggregate news feeds, search them, embed related coverage."""
    ctx.obj = CliState(config_path, verbose)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if not verbose:
        # One line per poll comes from newsdesk.poll; the libraries' per-request and per-tick
        # lines would drown it at the default level.
        for noisy in ("apscheduler", "httpx", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def catch_up_index(services: Services, stop: threading.Event | None = None) -> None:
    """Bring the index up to date with the store's change log; a busy index is logged and left to its writer."""
    try:
        stats = services.indexer(stop).catch_up()
    except IndexBusyError as exc:
        # Another process (`run`, `reindex`) is writing it and catches up with these changes too.
        logging.getLogger("newsdesk.index").info("index not caught up now: %s", exc)
        return
    if stats.upserts or stats.deletes:
        logging.getLogger("newsdesk.index").info(
            "index caught up to seq=%d (+%d -%d)", stats.seq, stats.upserts, stats.deletes
        )


def prepare_index(services: Services, stop: threading.Event | None = None) -> None:
    """At a writer's start: check the index, rebuild it from the store if missing or damaged (logged), catch up."""
    try:
        services.indexer(stop).repair()
    except IndexBusyError as exc:
        logging.getLogger("newsdesk.index").info("index not checked at start: %s", exc)
    except SearchIndexError:
        if stop is None or not stop.is_set():
            raise
        # A stop cut the rebuild short; the half-built generation is removed and the next start rebuilds.


@main.command()
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry per line.")
@click.pass_obj
def inspect(state: CliState, source: str, as_json: bool) -> None:
    """Fetch, parse and normalize SOURCE (URL or file) and print its entries; stores nothing."""
    from aggregator.config import check_feed_url

    config = state.config
    check_feed_url(source, "SOURCE")
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
            click.echo(
                f"{iso(entry.published_at)}  {entry.title}\n    {entry.url}\n    by {', '.join(entry.authors) or '-'}"
            )


def _serve_forever(config: Config, services: Services, shutdown: Shutdown) -> None:
    from waitress.server import create_server

    from .app import create_app

    app = create_app(config, services)
    server = create_server(
        app, host=config.server.host, port=config.server.port, threads=config.server.threads, ident="newsdesk"
    )
    click.echo(f"Newsdesk on http://{config.server.host}:{config.server.port}/", err=True)
    server.print_listen("Serving on http://{}:{}")
    serve_until_stopped(server, shutdown)


@main.command()
@click.pass_obj
def serve(state: CliState) -> None:
    """Serve the web front end only (production WSGI server; reads the index, never writes it).

    SIGTERM or SIGINT stops it: requests in flight are answered, then it exits 0.
    """
    shutdown = Shutdown()
    shutdown.install()
    services = state.services
    problem = services.indexer().check()  # reads only: the writer (`run`, `index`) rebuilds a damaged index
    if problem is not None:
        log.warning(
            "search index %s: %s; `serve` never writes the index, so searches are unavailable or incomplete "
            "until `newsdesk run` or `newsdesk index` rebuilds it from the store",
            state.config.index_dir,
            problem,
        )
    try:
        _serve_forever(state.config, services, shutdown)
    finally:
        services.close()


@main.command()
@click.option("--tick", default=15.0, show_default=True, help="Seconds between scheduler checks for due feeds.")
@click.pass_obj
def run(state: CliState, tick: float) -> None:
    """Poll feeds on schedule, index, and serve the web front end, in one process.

    SIGTERM or SIGINT (once or twice) stops it within a few seconds with exit status 0: checks in
    flight are finished or abandoned (abandoned ones run at the next start); a third signal forces it.
    """
    from aggregator.scheduler import build_scheduler, install_reload_on_sighup, stop_scheduler

    shutdown = Shutdown()
    shutdown.install()  # before the slow start-up: a stop during it is as clean as one later
    stopping = shutdown.requested
    services = state.services
    sync_config_feeds(services.store, state.config)
    lock = threading.Lock()

    def after_poll() -> None:
        with lock:
            try:
                catch_up_index(services, stopping)
            except SearchIndexError as exc:
                logging.getLogger("newsdesk.index").error("index not caught up: %s", exc)

    def index_if_behind() -> None:
        # Entries stored by other processes (`feeds add`, `poll --no-index`) or a catch-up that found
        # the index busy: the poll ticks alone would leave them unindexed until the next due feed.
        if services.indexer().indexed_seq() < services.store.last_seq():
            after_poll()

    prepare_index(services, stopping)
    if stopping.is_set():
        services.close()
        return
    scheduler = build_scheduler(services.store, state.config, after_poll=after_poll, tick_seconds=tick, stop=stopping)
    scheduler.add_job(
        index_if_behind, "interval", seconds=max(tick, 5.0), id="index-catch-up", max_instances=1, coalesce=True
    )
    cli_search.schedule_index_maintenance(scheduler, services, lock)  # merges index segments every few hours
    scheduler.start()
    if state.config.source_path:  # SIGHUP re-reads the file: new feeds are polled soon, removed ones stop
        install_reload_on_sighup(scheduler, state.config.source_path)
    try:
        _serve_forever(state.config, services, shutdown)
    except BaseException:
        stop_scheduler(scheduler, grace=shutdown.grace)
        raise
    finished = stop_scheduler(scheduler, grace=shutdown.remaining())
    if finished and lock.acquire(timeout=shutdown.remaining()):
        lock.release()
        services.close()
        exit_soon(2.0)  # a normal exit (finalizers run); bounded should a stray job hold it
        return
    log.warning(
        "work in flight abandoned after %.0f s: unfinished feed checks run again at the next start, "
        "and the index resumes from its last commit",
        shutdown.grace,
    )
    exit_now(0)


# Subcommand modules register themselves on `main` when imported.
from . import cli_feeds, cli_search  # noqa: E402,F401

if __name__ == "__main__":  # pragma: no cover
    main()
