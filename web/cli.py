"""The `newsdesk` command: a thin click layer over the same functions the web uses.

This module assembles the command (the console script's entry point, ``main``): the group and what
every command shares live in cli_group.py, the commands here and in cli_feeds.py and cli_search.py,
which register on the group when imported; none of them imports this module.

Each command imports the libraries it uses when it runs (Flask, SQLAlchemy, Whoosh, numpy, httpx
take seconds to import on a busy machine): `newsdesk --help` and a mistyped option answer at once.
"""

from __future__ import annotations

import errno
import json
import logging
import signal
import sys
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from aggregator.config import Config

from . import cli_feeds, cli_search  # noqa: F401  (importing them registers their commands on main)
from .cli_group import CliState, catch_up_index, fail, main

if TYPE_CHECKING:
    from .services import Services

__all__ = ["main"]


@main.command()
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry per line.")
@click.pass_obj
def inspect(state: CliState, source: str, as_json: bool) -> None:
    """Fetch, parse and normalize SOURCE (URL or file) and print its entries; stores nothing."""
    from aggregator.config import check_feed_url
    from aggregator.errors import FeedError
    from aggregator.fetch import fetch_url, is_local, make_client
    from aggregator.models import Feed
    from aggregator.normalize import normalize_feed
    from aggregator.parse import parse_feed
    from aggregator.store import host_title
    from aggregator.update import feed_context, limits_from_config

    from .serialize import entry_json, iso

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
    # Titled by its host name, the feed takes the document's own title and link as a poll would: cleaned.
    feed = Feed(id=0, key=source, url=source, title=host_title(source), site_url=None)
    final_url = result.final_url if not is_local(source) else source
    context = feed_context(feed, parsed, final_url, now)
    for entry in normalize_feed(parsed, context):
        if as_json:
            click.echo(json.dumps(entry_json(entry), ensure_ascii=False))
        else:
            click.echo(
                f"{iso(entry.published_at)}  {entry.title}\n    {entry.url}\n    by {', '.join(entry.authors) or '-'}"
            )


def listen_options(command: Any) -> Any:
    """Add --host and --port (overriding server.host and server.port) to a command that serves the web."""

    def remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None:
            ctx.ensure_object(CliState).listen[str(param.name)] = value
        return value

    command = click.option(
        "--port", type=click.IntRange(1, 65535), expose_value=False, callback=remember, help="Override server.port."
    )(command)
    return click.option(
        "--host", metavar="ADDRESS", expose_value=False, callback=remember, help="Override server.host."
    )(command)


def bind_server(config: Config, services: Services) -> Any:
    """Return a waitress server listening on the configured address, or exit with one line saying why it cannot.

    `serve` and `run` bind before they start anything else (scheduler, polling, index catch-up), so a
    port in use stops them at once, with nothing half-started to shut down.
    """
    from waitress.server import create_server

    from .app import create_app

    host, port = config.server.host, config.server.port
    try:
        return create_server(
            create_app(config, services),
            host=host,
            port=port,
            threads=config.server.threads,
            ident="newsdesk",
            # Keep X-Forwarded-For/Forwarded for /metrics, which refuses any request a proxy says came from
            # outside server.metrics_allow (waitress drops them by default; nothing else reads or trusts them).
            clear_untrusted_proxy_headers=False,
        )
    except (OSError, ValueError) as error:
        # waitress turns a host name it cannot resolve (socket.gaierror) into "ValueError: Invalid host/port".
        exc = error if isinstance(error, OSError) else error.__context__
        if not isinstance(exc, OSError):
            exc = OSError(0, str(error))
        where = config.source_path or "config.toml"
        known = {
            errno.EADDRINUSE: ("address already in use", f"set server.port in {where} or pass --port"),
            errno.EACCES: ("permission denied", f"choose a port above 1023 in {where} or with --port"),
            errno.EADDRNOTAVAIL: ("no such address on this machine", f"set server.host in {where} or pass --host"),
        }
        reason, advice = known.get(
            exc.errno or 0,
            ((exc.strerror or str(exc)).lower(), f"check server.host and server.port in {where}, or --host/--port"),
        )
        fail(f"cannot listen on {host}:{port}: {reason} ({advice})")


def serve_forever(server: Any, config: Config) -> None:
    """Say where the server listens and serve requests until the process is stopped."""
    address = f"Newsdesk on http://{server.effective_host}:{server.effective_port}/"
    if config.log_format == "json":
        logging.getLogger("newsdesk").info(address)  # stderr stays one JSON object per line
    else:
        click.echo(address, err=True)
    server.run()


def log_features(services: Services) -> None:
    """Log each optional feature this installation lacks, with how many feeds ask for it (one line each)."""
    from aggregator.features import check_features

    check_features(services.store.list_feeds())


@main.command()
@listen_options
@click.pass_obj
def serve(state: CliState) -> None:
    """Serve the web front end only (production WSGI server; reads the index, never writes it)."""
    server = bind_server(state.config, state.services)
    log_features(state.services)
    serve_forever(server, state.config)


@main.command()
@click.option("--tick", default=15.0, show_default=True, help="Seconds between scheduler checks for due feeds.")
@listen_options
@click.pass_obj
def run(state: CliState, tick: float) -> None:
    """Poll feeds on schedule, index, and serve the web front end, in one process."""
    from aggregator.scheduler import build_scheduler, install_reload_on_sighup
    from aggregator.update import sync_config_feeds

    services = state.services
    server = bind_server(state.config, services)
    sync_config_feeds(services.store, state.config)
    log_features(services)
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
        serve_forever(server, state.config)
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)


if __name__ == "__main__":  # pragma: no cover
    main()
