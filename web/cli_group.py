"""The `newsdesk` click group and what every command shares: the per-invocation state and the one-line failure.

The subcommand modules (cli.py, cli_feeds.py, cli_search.py) register their commands on ``main``
here; cli.py imports them all and is the console script's entry point.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aggregator.config import Config, load_config, resolve_config_path
from aggregator.errors import IndexBusyError, NewsdeskError

if TYPE_CHECKING:
    from .services import Services


class CliState:
    """Lazily loaded config and services for one CLI invocation."""

    def __init__(self, config_path: str | None, verbose: bool = False) -> None:
        self.config_path = config_path
        self.verbose = verbose
        self._config: Config | None = None
        self._services: Services | None = None
        #: --host / --port given to `serve` or `run`, overriding the config's server table.
        self.listen: dict[str, Any] = {}

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
            if self.listen:
                server = dataclasses.replace(self._config.server, **self.listen)
                self._config = dataclasses.replace(self._config, server=server)
        return self._config

    @property
    def services(self) -> Services:
        if self._services is None:
            from .services import build_services

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


def assign_stories(services: Services, stop: threading.Event | None = None) -> None:
    """Assign stories to the entries stored since the last run (in change-log order), logging how many."""
    assigned = services.assign_stories(stop)
    if assigned:
        logging.getLogger("newsdesk.stories").info("stories assigned to %d new entries", assigned)


def catch_up_index(services: Services, stop: threading.Event | None = None) -> None:
    """Bring stories and the index up to date with the store's change log; a busy index is logged and left to its writer."""
    assign_stories(services, stop)
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
