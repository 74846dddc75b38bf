"""CLI: the roles of a scaled-out Newsdesk on one shared PostgreSQL store: `newsdesk poller` and `newsdesk serve --follow`.

`newsdesk run` stays the one-machine role (SQLite or PostgreSQL, one process polls and indexes).
The roles here need PostgreSQL and refuse SQLite in one line: SQLite has a single writer.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from aggregator.config import Config
from aggregator.errors import ConfigError
from aggregator.sessions import POLLER_SESSION, WEB_NODE_SESSION, with_application_name

from ..lifecycle import Shutdown, exit_now
from .group import CliState, bind_server, main, serve_forever

if TYPE_CHECKING:
    from aggregator.store import Store

log = logging.getLogger("newsdesk.node")

#: Seconds `newsdesk poller --once` waits at its end for the story lock (another poller may hold it).
STORY_DRAIN_SECONDS = 60.0


def require_postgres(config: Config, role: str) -> None:
    """Raise ConfigError (one line) unless the store is PostgreSQL."""
    if not config.db_url.startswith("postgresql"):
        raise ConfigError(
            f"`newsdesk {role}` needs a PostgreSQL store shared by every node (database_url = "
            '"postgresql://..."); on SQLite, one `newsdesk run` polls, indexes and serves'
        )


def refuse_beside_writers(store: Store) -> None:
    """Raise ConfigError (one line) when a `newsdesk run` or `newsdesk poll` polls this store without leases."""
    from aggregator.pollnode import active_writers

    writers = active_writers(store)
    if writers:
        raise ConfigError(
            "`newsdesk poller` would poll beside a `newsdesk run` or `newsdesk poll` that polls this store without "
            f"leases ({', '.join(writers[:5])}{', ...' if len(writers) > 5 else ''}): stop it first, then run "
            "pollers and `newsdesk serve --follow` nodes instead"
        )


def refuse_beside_pollers(store: Store, role: str) -> None:
    """Raise ConfigError (one line) when `newsdesk poller` nodes poll this PostgreSQL store: ``role`` would poll it too."""
    from aggregator.pollnode import active_pollers

    if store.engine.dialect.name != "postgresql":
        return
    pollers = active_pollers(store)
    if pollers:
        raise ConfigError(
            f"`newsdesk {role}` would poll without leases beside the `newsdesk poller` nodes polling this store "
            f"({', '.join(pollers[:5])}{', ...' if len(pollers) > 5 else ''}): stop them first; beside pollers, "
            "serve with `newsdesk serve --follow` and add feeds with `newsdesk feeds add`"
        )


def _stop_on_signals(stop: threading.Event, role: str) -> None:
    """First SIGTERM/SIGINT: finish the work in hand, then exit 0; the second exits at once."""

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            sys.exit(0)
        log.info("%s: stopping after the work in hand (signal %d again stops now)", role, signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@main.command()
@click.option("--once", is_flag=True, help="Poll until no feed is free to claim, then exit (cron, benchmarks).")
@click.pass_obj
def poller(state: CliState, once: bool) -> None:
    """Claim due feeds under leases and poll them; writes the store only (PostgreSQL; run as many as you like).

    One poller at a time also assigns stories (the one holding the story lock; another takes over when it stops).
    """
    from aggregator.configfeeds import sync_config_feeds
    from aggregator.leases import exclusive
    from aggregator.pollnode import PollNode, node_name
    from aggregator.story_leader import StoryLeader

    from ..services import Role

    config = state.config
    require_postgres(config, "poller")
    name = node_name(config)
    store = state.services_as(Role.POLLER, session=POLLER_SESSION).store  # named "newsdesk-poller NAME"
    refuse_beside_writers(store)
    with exclusive(store, "config-sync"):  # pollers starting together would add the same feed twice
        sync_config_feeds(store, config)
    node = PollNode(store, config, name=name)
    leader = StoryLeader(store, config, name)
    stop = threading.Event()
    _stop_on_signals(stop, f"poller {name}")
    stories = threading.Thread(target=leader.run, args=(stop,), name="newsdesk-stories", daemon=True)
    stories.start()
    log.info("poller %s: polling the feeds of %s", name, urlsplit(config.db_url)._replace(netloc="…").geturl())
    try:
        checked = node.run(stop, until_idle=once)
        if once and not stop.is_set():
            stop.set()
            stories.join()
            leader.drain(STORY_DRAIN_SECONDS)  # what this run stored leaves with its stories
    finally:
        stop.set()
        node.close()
        stories.join(timeout=30)  # a batch in hand is committed or, cut short, assigned again by the next holder
        store.close()
    log.info("poller %s: stopped after %d checks", name, checked)


def serve_following(state: CliState, index_dir: str | None) -> None:
    """Serve the web front end with this node's own index replica, following the store's change log.

    Stops as `serve` does (SIGTERM or SIGINT: requests in flight are answered); the follower stops with
    it, within the grace period (a batch cut short is applied again at the next start).
    """
    from aggregator.changelog import ChangeLog
    from aggregator.pollnode import node_name
    from aggregator.store import open_store
    from index.follower import Follower

    from ..services import Role, build_services

    shutdown = Shutdown()
    shutdown.install()
    config = state.config
    if index_dir:
        config = dataclasses.replace(
            config, node=dataclasses.replace(config.node, index_dir=str(Path(index_dir).resolve()))
        )
    require_postgres(config, "serve --follow")
    name = node_name(config)
    store = open_store(with_application_name(config.db_url, f"{WEB_NODE_SESSION} {name}"))
    follower = Follower(config.index_dir, ChangeLog(store), batch_size=config.node.follow_batch)
    follower.lock()
    services = build_services(config, Role.WEB_NODE, store=store, follower=follower)
    server = bind_server(config, services)  # before the follower starts: a port in use stops it at once
    stop = shutdown.requested
    thread = threading.Thread(
        target=follower.follow, args=(stop, float(config.node.follow_interval)), name="newsdesk-follower", daemon=True
    )
    thread.start()
    log.info("web node %s: following the store into %s", name, config.index_dir)
    try:
        serve_forever(server, config, shutdown, services)
    finally:
        stop.set()  # also when serving failed: the follower never outlives the web server
        thread.join(timeout=shutdown.remaining())
    if thread.is_alive():
        # A batch (or a replay) still running: it resumes from the replica's last commit at the next start.
        log.warning("web node %s: replica update abandoned after %.0f s", name, shutdown.grace)
        exit_now(0)
    follower.close()
    services.close()
