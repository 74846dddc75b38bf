"""The `newsdesk` click group and what every command shares: the per-invocation state and the one-line failure.

The subcommand modules (``web.cli`` itself, feeds.py, search.py, roles.py) register their commands
on ``main`` here; ``web.cli`` imports them all and is the console script's entry point. Binding and serving the
web (``bind_server``, ``serve_forever``) live here too: `serve`, `run` and `serve --follow` share them.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aggregator.config import Config, load_config, resolve_config_path
from aggregator.errors import NewsdeskError

from ..lifecycle import Shutdown, serve_until_stopped

if TYPE_CHECKING:
    from ..services import Role, Services


class CliState:
    """Lazily loaded config and services for one CLI invocation."""

    def __init__(self, config_path: str | None, verbose: bool = False) -> None:
        self.config_path = config_path
        self.verbose = verbose
        self._config: Config | None = None
        self._services: Services | None = None
        self._feeds_synced = False
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
                from ..logs import use_log_format

                use_log_format(self._config.log_format)
            if self.listen:
                server = dataclasses.replace(self._config.server, **self.listen)
                self._config = dataclasses.replace(self._config, server=server)
        return self._config

    @property
    def services(self) -> Services:
        """Return the writer's services (commands that change the store or the index), feeds synced with the config."""
        from ..services import Role

        services = self.services_as(Role.WRITER)
        self.sync_config_feeds()
        return services

    def sync_config_feeds(self) -> None:
        """Make the store's config-declared feeds match config.toml, once per invocation (writers only)."""
        if not self._feeds_synced:
            from aggregator.configfeeds import sync_config_feeds

            from ..services import Role

            sync_config_feeds(self.services_as(Role.WRITER).store, self.config)
            self._feeds_synced = True

    def services_as(self, role: Role, *, session: str | None = None) -> Services:
        """Return this invocation's services, built for ``role`` on first use (one role per command).

        ``session`` names the process to PostgreSQL (`aggregator.sessions`), for the commands that poll.
        """
        if self._services is not None and self._services.role is not role:
            raise RuntimeError(f"services built for the {self._services.role.value} role, asked for {role.value}")
        if self._services is None:
            from ..services import build_services

            self._services = build_services(self.config, role, session=session)
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

    from ..app import create_app

    host, port = config.server.host, config.server.port
    try:
        server = create_server(
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
    return server


def serve_forever(server: Any, config: Config, shutdown: Shutdown, services: Services) -> None:
    """Say where the server listens and serve requests until a stop is requested (requests in flight are answered).

    Related coverage starts reading the index's lexicons and postings, and the past weeks' stories, in the
    background now, once the process's own start-up (index checks, catch-up) is done, so that the first
    asks about articles of any age do not each pay for reading what they touch.
    """
    services.related.warm()
    services.stories.warm_past()
    address = f"Newsdesk on http://{server.effective_host}:{server.effective_port}/"
    if config.log_format == "json":
        logging.getLogger("newsdesk").info(address)  # stderr stays one JSON object per line
    else:
        click.echo(address, err=True)
    serve_until_stopped(server, shutdown)
