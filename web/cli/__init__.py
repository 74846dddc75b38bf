"""The `newsdesk` command: a thin click layer over the same functions the web uses.

This package assembles the command (the console script's entry point, ``main``): the group and what
every command shares live in `group.py`; the commands here (`inspect`, `serve`, `run`) and in
`feeds.py` (`poll`, `feeds ...`), `search.py` (`index`, `reindex`, `search`, `stories`) and
`roles.py` (the scale-out roles: `poller`, `serve --follow`) register on the group when imported;
none of them imports this module.

Each command imports the libraries it uses when it runs (Flask, SQLAlchemy, Whoosh, numpy, httpx
take seconds to import on a busy machine): `newsdesk --help` and a mistyped option answer at once.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import click

from ..lifecycle import Shutdown, exit_now, exit_soon
from . import feeds, roles, search  # noqa: F401  (importing them registers their commands on main)
from .group import CliState, bind_server, fail, listen_options, main, serve_forever

if TYPE_CHECKING:
    from ..services import Services

log = logging.getLogger("newsdesk")

__all__ = ["main"]


@main.command()
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry per line.")
@click.pass_obj
def inspect(state: CliState, source: str, as_json: bool) -> None:
    """Fetch, parse and normalize SOURCE (URL or file) and print its entries; stores nothing."""
    from aggregator.config import check_feed_url
    from aggregator.errors import FetchError
    from aggregator.fetch import make_client
    from aggregator.from_config import limits_from_config
    from aggregator.pipeline import fetch, read, start, unstored_feed

    from ..serialize import entry_json, iso

    config = state.config
    check_feed_url(source, "SOURCE")
    # The first stages of a poll's check, on a feed that is not stored: nothing is written.
    with make_client(limits_from_config(config)) as client:
        check = fetch(start(unstored_feed(source)), client, config)
    fetched = check.fetched
    if isinstance(fetched, FetchError):
        fail(str(fetched))
        return
    if fetched is not None and fetched.status != 200:
        fail(f"{source}: the server answered HTTP {fetched.status}")
        return
    normalized = read(check).normalized
    if normalized is None or normalized.error is not None:
        fail(f"{source}: {normalized.error if normalized else 'the response could not be read'}")
        return
    for entry in normalized.entries:
        if as_json:
            click.echo(json.dumps(entry_json(entry), ensure_ascii=False))
        else:
            click.echo(
                f"{iso(entry.published_at)}  {entry.title}\n    {entry.url}\n    by {', '.join(entry.authors) or '-'}"
            )


def log_features(services: Services) -> None:
    """Log each optional feature this installation lacks, with how many feeds ask for it (one line each)."""
    from aggregator.features import check_features

    check_features(services.store.list_feeds())


@main.command()
@click.option("--follow", is_flag=True, help="Keep this node's own index replica, following the PostgreSQL store.")
@click.option("--index-dir", default=None, help="With --follow: where the replica lives (default: node.index_dir).")
@listen_options
@click.pass_obj
def serve(state: CliState, follow: bool, index_dir: str | None) -> None:
    """Serve the web front end only (production WSGI server; reads the index, never writes it).

    SIGTERM or SIGINT stops it: requests in flight are answered, then it exits 0.
    """
    if follow or index_dir:
        if not follow:
            fail("--index-dir goes with --follow (without it, set node.index_dir in the config)")
        roles.serve_following(state, index_dir)
        return
    from ..services import Role

    shutdown = Shutdown()
    shutdown.install()
    services = state.services_as(Role.WEB)
    server = bind_server(state.config, services)
    log_features(services)
    problem = services.index_problem()  # reads only: the writer (`run`, `index`) rebuilds a damaged index
    if problem is not None:
        log.warning(
            "search index %s: %s; `serve` never writes the index, so searches are unavailable or incomplete "
            "until `newsdesk run` or `newsdesk index` rebuilds it from the store",
            state.config.index_dir,
            problem,
        )
    try:
        serve_forever(server, state.config, shutdown, services)
    finally:
        services.close()


@main.command()
@click.option("--tick", default=15.0, show_default=True, help="Seconds between scheduler checks for due feeds.")
@listen_options
@click.pass_obj
def run(state: CliState, tick: float) -> None:
    """Poll feeds on schedule, index, and serve the web front end, in one process.

    SIGTERM or SIGINT (once or twice) stops it within a few seconds with exit status 0: checks in
    flight are finished or abandoned (abandoned ones run at the next start); a third signal forces it.
    """
    from aggregator.scheduler import build_scheduler, install_reload_on_sighup, stop_scheduler
    from aggregator.sessions import WRITER_SESSION

    from ..services import Role
    from ..writer import Writer

    shutdown = Shutdown()
    shutdown.install()  # before the slow start-up: a stop during it is as clean as one later
    stopping = shutdown.requested
    services = state.services_as(Role.WRITER, session=WRITER_SESSION)
    roles.refuse_beside_pollers(services.store, "run")
    server = bind_server(state.config, services)  # before the feeds sync: a port in use stops it at once
    state.sync_config_feeds()
    log_features(services)
    writer = Writer(services, stopping)
    writer.prepare()
    if stopping.is_set():
        services.close()
        return
    scheduler = build_scheduler(
        services.store,
        state.config,
        after_poll=writer.catch_up,
        tick_seconds=tick,
        stop=stopping,
        observer=services.metrics.observer(),
    )
    services.scheduler = scheduler  # /readyz watches it; /metrics counts its polls
    writer.schedule(scheduler, tick)  # catches up with other processes' changes; merges index segments every few hours
    scheduler.start()
    if state.config.source_path:  # SIGHUP re-reads the file: new feeds are polled soon, removed ones stop
        install_reload_on_sighup(scheduler, state.config.source_path)
    try:
        serve_forever(server, state.config, shutdown, services)
    except BaseException:
        stop_scheduler(scheduler, grace=shutdown.grace)
        raise
    finished = stop_scheduler(scheduler, grace=shutdown.remaining())
    if finished and writer.idle(shutdown.remaining()):
        services.close()
        exit_soon(2.0)  # a normal exit (finalizers run); bounded should a stray job hold it
        return
    log.warning(
        "work in flight abandoned after %.0f s: unfinished feed checks run again at the next start, "
        "and the index resumes from its last commit",
        shutdown.grace,
    )
    exit_now(0)


if __name__ == "__main__":  # pragma: no cover
    main()
