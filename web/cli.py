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
from aggregator.update import feed_context, limits_from_config, sync_config_feeds

from .serialize import entry_json, iso
from .services import Services, build_services


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
            if self._config.log_format != "text":
                from .logs import use_log_format

                use_log_format(self._config.log_format)
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


def catch_up_index(services: Services) -> None:
    """Bring the index up to date with the store's change log."""
    stats = services.indexer().catch_up()
    if stats.upserts or stats.deletes:
        logging.getLogger("newsdesk.index").info(
            "index caught up to seq=%d (+%d -%d)", stats.seq, stats.upserts, stats.deletes
        )


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


def _serve_forever(config: Config, services: Services) -> None:
    from waitress import serve as waitress_serve

    from .app import create_app

    app = create_app(config, services)
    address = f"Newsdesk on http://{config.server.host}:{config.server.port}/"
    if config.log_format == "json":
        logging.getLogger("newsdesk").info(address)  # stderr stays one JSON object per line
    else:
        click.echo(address, err=True)
    waitress_serve(
        app,
        host=config.server.host,
        port=config.server.port,
        threads=config.server.threads,
        ident="newsdesk",
        # Keep X-Forwarded-For/Forwarded for /metrics, which refuses any request a proxy says came from
        # outside server.metrics_allow (waitress drops them by default; nothing else reads or trusts them).
        clear_untrusted_proxy_headers=False,
    )


@main.command()
@click.option("--follow", is_flag=True, help="Keep this node's own index replica, following the PostgreSQL store.")
@click.option("--index-dir", default=None, help="With --follow: where the replica lives (default: node.index_dir).")
@click.pass_obj
def serve(state: CliState, follow: bool, index_dir: str | None) -> None:
    """Serve the web front end only (production WSGI server; reads the index, never writes it)."""
    if follow or index_dir:
        if not follow:
            fail("--index-dir goes with --follow (without it, set node.index_dir in the config)")
        from .cli_roles import serve_following

        serve_following(state, index_dir)
        return
    _serve_forever(state.config, state.services)


@main.command()
@click.option("--tick", default=15.0, show_default=True, help="Seconds between scheduler checks for due feeds.")
@click.pass_obj
def run(state: CliState, tick: float) -> None:
    """Poll feeds on schedule, index, and serve the web front end, in one process."""
    from aggregator.scheduler import build_scheduler, install_reload_on_sighup

    services = state.services
    sync_config_feeds(services.store, state.config)
    lock = threading.Lock()

    def after_poll() -> None:
        with lock:
            catch_up_index(services)

    catch_up_index(services)
    scheduler = build_scheduler(
        services.store, state.config, after_poll=after_poll, tick_seconds=tick, observer=services.metrics.observer()
    )
    services.scheduler = scheduler  # /readyz watches it; /metrics counts its polls
    cli_search.schedule_index_maintenance(scheduler, services, lock)  # merges index segments every few hours
    scheduler.start()
    if state.config.source_path:  # SIGHUP re-reads the file: new feeds are polled soon, removed ones stop
        install_reload_on_sighup(scheduler, state.config.source_path)

    def stop(signum: int, frame: Any) -> None:
        scheduler.shutdown(wait=False)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        _serve_forever(state.config, services)
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)


# Subcommand modules register themselves on `main` when imported.
from . import cli_feeds, cli_roles, cli_search  # noqa: E402,F401

if __name__ == "__main__":  # pragma: no cover
    main()
