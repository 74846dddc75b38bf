"""CLI: polling and feed management (list, add with discovery, remove, OPML import and export)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from aggregator.config import check_feed_url
from aggregator.errors import ConfigError, FeedError
from aggregator.sessions import WRITER_SESSION

from ..terminal import terminal_safe
from .group import CliState, fail, main
from .roles import refuse_beside_pollers

if TYPE_CHECKING:
    from aggregator.config import Config, FeedConfig
    from aggregator.models import Feed, UpdateResult
    from aggregator.store import Store


def find(store: Store, feed: str) -> Feed:
    """Return the feed named by URL, key or id, or exit with an error."""
    found = store.find_feed(feed) or (store.get_feed(int(feed)) if feed.isdigit() else None)
    if found is None:
        fail(f"no feed {feed!r}; see `newsdesk feeds list`")
    assert found is not None
    return found


def declared_not_added(store: Store, config: Config) -> list[FeedConfig]:
    """Return the feeds config.toml declares that no writer (`run`, `poll`, `feeds add`) has added to the store yet."""
    return [declared for declared in config.feeds if store.find_feed(declared.url) is None]


def _result_line(result: UpdateResult) -> str:
    if result.error:
        return f"error   {result.url}: {result.error}"
    status = "304 not modified" if result.status == 304 else f"HTTP {result.status}"
    extra = "".join(f"; {note}" for note in result.notes)
    return f"ok      {result.url}: {status}, {result.new_entries} new, {result.updated_entries} updated{extra}"


@main.command()
@click.option("--once", is_flag=True, help="Check the feeds that are due, index, and exit (the default).")
@click.option("--all", "check_all", is_flag=True, help="Check every enabled feed now, except those told to wait.")
@click.option("--no-index", is_flag=True, help="Store entries but leave indexing to a later run.")
@click.argument("feed", required=False)
@click.pass_obj
def poll(state: CliState, once: bool, check_all: bool, no_index: bool, feed: str | None) -> None:
    """Check feeds for new entries once, then exit (FEED: one feed's URL or id, checked now)."""
    from aggregator.policy import waiting_reason
    from aggregator.poller import update_feeds

    from ..serialize import iso
    from ..services import Role
    from ..writer import catch_up_index

    services = state.services_as(Role.WRITER, session=WRITER_SESSION)
    refuse_beside_pollers(services.store, "poll")  # before the feeds sync: nothing is written beside pollers
    state.sync_config_feeds()
    now = datetime.now(UTC)
    if feed:
        targets = [find(services.store, feed)]
    elif check_all:
        targets = []
        for candidate in services.store.list_feeds(enabled_only=True):
            waiting = waiting_reason(candidate, now)
            if waiting:
                # Politeness beats impatience: a server's Retry-After and our backoff still hold.
                click.echo(f"skipped {candidate.url}: {waiting[0]}; due {iso(waiting[1])}")
                continue
            targets.append(candidate)
    else:
        targets = services.store.due_feeds(now)
    from ..progress import Progress, ProgressObserver

    with Progress("poll", len(targets)) as progress:
        results = update_feeds(services.store, targets, state.config, observer=ProgressObserver(progress))
    for result in results:
        click.echo(_result_line(result))
    failed = sum(1 for r in results if r.error)
    new = sum(r.new_entries for r in results)
    click.echo(f"checked {len(results)} feed(s): {new} new entries, {failed} failed", err=True)
    if not no_index:
        catch_up_index(services)
    if failed:
        # Cron and scripts see that something needs attention; the other feeds were still polled.
        sys.exit(1)


@main.group()
def feeds() -> None:
    """List, add, remove, import and export feeds."""


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per feed per line.")
@click.pass_obj
def feeds_list(state: CliState, as_json: bool) -> None:
    """Show every feed and its polling state."""
    from aggregator.features import feed_warnings

    from ..feeds import relative
    from ..serialize import feed_json
    from ..services import Role

    # A reader: it lists what the store holds and never writes it. Feeds config.toml declares that
    # no writer (`run`, `poll`) has added yet are listed after the others, marked as such.
    services = state.services_as(Role.READER)
    now = datetime.now(UTC)
    for feed in services.store.list_feeds():
        if as_json:
            click.echo(json.dumps(feed_json(feed), ensure_ascii=False))
            continue
        status = feed.last_status if feed.last_status is not None else "-"
        rate = f"{feed.entries_per_week:.1f}/week" if feed.entries_per_week is not None else "rate unknown"
        # terminal_safe: a feed's title and errors are text a stranger wrote.
        click.echo(
            terminal_safe(
                f"{feed.id:>4} {'on ' if feed.enabled else 'off'} {feed.url}\n"
                f"     {feed.title} | checked {relative(feed.last_checked_at, now)} | status {status} | "
                f"failures {feed.consecutive_failures} | next {relative(feed.next_check_at, now, due=True) if feed.enabled else '-'} | "
                f"{rate} | {feed.entry_count} entries"
                + (f"\n     error: {feed.last_error}" if feed.last_error else "")
                + "".join(f"\n     warning: {warning}" for warning in feed_warnings(feed))
                + (f"\n     disabled: {feed.disabled_reason}" if feed.disabled_reason else "")
                + (f"\n     moving to: {feed.pending_redirect_url}" if feed.pending_redirect_url else "")
            )
        )
    for declared in declared_not_added(services.store, state.config):
        if as_json:
            pending = {"id": None, "url": declared.url, "title": declared.title or None, "enabled": declared.enabled}
            click.echo(json.dumps({**pending, "added": False}, ensure_ascii=False))
            continue
        click.echo(
            terminal_safe(
                f"   - {'on ' if declared.enabled else 'off'} {declared.url}\n"
                "     in the config, not added yet: the next `newsdesk run` or `newsdesk poll` adds it"
            )
        )


@feeds.command("add")
@click.argument("url")
@click.option("--title", default=None, help="Display title (default: the feed's own).")
@click.option("--tag", "tags", multiple=True, help="Operator tag; repeat for several.")
@click.option("--pick", type=int, default=None, help="When URL is a page linking to several feeds: add the Nth.")
@click.option("--no-check", is_flag=True, help="Add the URL as given, without fetching it first.")
@click.pass_obj
def feeds_add(
    state: CliState, url: str, title: str | None, tags: tuple[str, ...], pick: int | None, no_check: bool
) -> None:
    """Add a feed by URL or path; a web page's advertised feed is found and added (polled on the next tick)."""
    from aggregator.discover import discover
    from aggregator.fetch import make_client
    from aggregator.from_config import limits_from_config

    url = check_feed_url(url, "url")
    store = state.services.store
    if not no_check:
        with make_client(limits_from_config(state.config)) as client:
            try:
                found = discover(client, url, state.config)
            except FeedError as exc:
                fail(f"{exc}\n(to add it anyway, run again with --no-check)")
                return
            if not found.is_feed:
                choices = found.alternates
                if len(choices) > 1 and pick is None:
                    click.echo(f"{url} is a web page that links to {len(choices)} feeds:", err=True)
                    for number, choice in enumerate(choices, 1):
                        click.echo(f"  {number}. {choice}", err=True)
                    fail("choose one with --pick N")
                index = (pick or 1) - 1
                if not 0 <= index < len(choices):
                    fail(f"--pick must be between 1 and {len(choices)}")
                url = choices[index]
                click.echo(f"{found.url} is a web page; adding the feed it links to: {url}", err=True)
                try:
                    discover(client, url, state.config)
                except FeedError as exc:
                    fail(f"the page links to {url}, but it is not usable: {exc}")
    existing = store.find_feed(url)
    if existing is None:
        feed = store.add_feed(url, title=title, tags=tags, origin="cli")
        click.echo(f"added feed {feed.id}: {feed.url}")
        return
    if any(fc.url in (existing.url, existing.key) for fc in state.config.feeds):
        fail(f"feed {existing.id} ({existing.url}) is declared in the config file; change its title or tags there")
    if title is None and not tags:
        click.echo(f"feed {existing.id} is already present: {existing.url}")
        return
    # Adding again only adds: new tags join the existing ones, other options are kept.
    merged = tuple(dict.fromkeys((*existing.tags, *tags)))
    store.update_feed_options(existing.id, title=title, tags=merged)
    click.echo(f"updated feed {existing.id}: {existing.url}")


@feeds.command("remove")
@click.argument("feed")
@click.pass_obj
def feeds_remove(state: CliState, feed: str) -> None:
    """Remove a feed (by URL or id) and its entries."""
    store = state.services.store
    found = find(store, feed)
    removed = store.remove_feed(found.id)
    click.echo(f"removed feed {found.id} ({found.url}) and {removed} entries")
    if any(fc.url in (found.url, found.key) for fc in state.config.feeds):
        click.echo("note: the feed is listed in the config file and comes back on the next start", err=True)


@feeds.command("enable")
@click.argument("feed")
@click.pass_obj
def feeds_enable(state: CliState, feed: str) -> None:
    """Enable a feed again (e.g. one retired after 410 Gone that came back); it is checked on the next tick."""
    store = state.services.store
    found = find(store, feed)
    store.set_feed_enabled(found.id, True)
    click.echo(f"enabled feed {found.id} ({found.url})")


@feeds.command("disable")
@click.argument("feed")
@click.option("--reason", default="disabled by the operator", show_default=True)
@click.pass_obj
def feeds_disable(state: CliState, feed: str, reason: str) -> None:
    """Stop polling a feed, keeping its entries, with a reason shown on /feeds."""
    store = state.services.store
    found = find(store, feed)
    store.set_feed_enabled(found.id, False, reason)
    click.echo(f"disabled feed {found.id} ({found.url}): {reason}")


@feeds.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def feeds_import(state: CliState, file: Path) -> None:
    """Add the feeds an OPML file lists, keeping their titles and folders (as tags)."""
    from aggregator.opml import read_opml

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the OPML file ({exc.strerror})") from exc
    listed, skipped = read_opml(data, label=str(file))
    from ..progress import Progress

    store = state.services.store
    added = 0
    with Progress("import", len(listed)) as progress:
        for item in listed:
            if store.find_feed(item.url) is not None:
                progress.echo(f"present {item.url}")
            else:
                store.add_feed(item.url, title=item.title, tags=item.categories, origin="opml")
                added += 1
                progress.echo(f"added   {item.url}" + (f" [{', '.join(item.categories)}]" if item.categories else ""))
            progress.advance()
    for skip in skipped:
        click.echo(f"skipped {skip.url}: {skip.reason}", err=True)
    click.echo(f"imported {added} new feed(s) of {len(listed)} listed; {len(skipped)} skipped", err=True)


@feeds.command("export")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout)."
)
@click.pass_obj
def feeds_export(state: CliState, output: Path | None) -> None:
    """Write every feed as OPML 2.0 (tags become folders and categories)."""
    from aggregator.hosts import host_title
    from aggregator.models import Feed
    from aggregator.opml import write_opml

    from ..services import Role

    # A reader, as `feeds list` is: the config's feeds not added yet are written as the config declares them.
    store = state.services_as(Role.READER).store
    declared = [
        Feed(id=0, key=d.url, url=d.url, title=d.title or host_title(d.url), site_url=None, tags=d.tags)
        for d in declared_not_added(store, state.config)
    ]
    data = write_opml([*store.list_feeds(), *declared])
    if output is None:
        click.echo(data.decode("utf-8"), nl=False)
    else:
        output.write_bytes(data)
        click.echo(f"wrote {output}", err=True)
